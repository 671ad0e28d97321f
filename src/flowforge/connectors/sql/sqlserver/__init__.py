"""SQL Server source: catalog discovery and batched reads through pymssql or mssql-python, with
every column rendered server-side into a form that reaches Arrow without loss."""
