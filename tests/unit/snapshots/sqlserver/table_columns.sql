SELECT c.name AS column_name, t.name AS type_name,
       CASE WHEN t.is_assembly_type = 1 THEN t.name ELSE TYPE_NAME(t.system_type_id) END AS base_type,
       c.max_length, c.precision, c.scale, c.is_nullable,
       CAST(CASE WHEN pk.column_id IS NULL THEN 0 ELSE 1 END AS bit) AS is_primary_key,
       OBJECT_DEFINITION(c.default_object_id) AS default_sql, t.is_user_defined
  FROM sys.columns c
  JOIN sys.types t ON t.user_type_id = c.user_type_id
  LEFT JOIN (SELECT ic.column_id
               FROM sys.indexes i
               JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
              WHERE i.object_id = OBJECT_ID(N'[Sales].[Txn History]') AND i.is_primary_key = 1) pk ON pk.column_id = c.column_id
 WHERE c.object_id = OBJECT_ID(N'[Sales].[Txn History]')
 ORDER BY c.column_id
