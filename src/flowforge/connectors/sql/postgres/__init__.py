"""PostgreSQL source: catalog discovery with psycopg, Arrow-native reads with ADBC (binary COPY)."""
