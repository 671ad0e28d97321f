SELECT CAST(MAX([ver]) AS bigint) FROM [Sales].[Txn History] WHERE [ver] > CAST(CAST(2001 AS bigint) AS binary(8))
