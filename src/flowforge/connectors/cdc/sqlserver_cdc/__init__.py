"""SQL Server change data capture tables (``cdc.fn_cdc_get_all_changes_*``) as a CDC source."""
