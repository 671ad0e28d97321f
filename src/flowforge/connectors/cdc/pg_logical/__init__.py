"""PostgreSQL logical decoding (``pgoutput``) as a CDC source."""
