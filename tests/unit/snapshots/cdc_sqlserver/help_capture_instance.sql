SELECT ct.capture_instance, ct.start_lsn, sys.fn_cdc_get_min_lsn(ct.capture_instance) AS min_lsn,
       cc.column_name, cc.column_type, cc.column_ordinal, ic.column_name AS key_column
FROM cdc.change_tables AS ct
JOIN cdc.captured_columns AS cc ON cc.object_id = ct.object_id
LEFT JOIN cdc.index_columns AS ic ON ic.object_id = ct.object_id AND ic.column_name = cc.column_name
WHERE ct.capture_instance = %s
ORDER BY cc.column_ordinal
