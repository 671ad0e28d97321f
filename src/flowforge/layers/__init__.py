"""The medallion layers: bronze (land raw), silver (clean and merge), gold (business SQL)."""
