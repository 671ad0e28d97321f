SELECT CONVERT(varchar(40), MAX([modified]), 126) FROM [Sales].[Txn History]

SELECT CONVERT(varchar(40), MAX([modified]), 126) FROM [Sales].[Txn History] WHERE [modified] > CAST(N'2024-01-02T00:00:00.0000001' AS datetime2(7))

SELECT CONVERT(varchar(40), MAX([modified]), 126) FROM [Sales].[Txn History] WHERE [modified] > CAST(N'2024-01-02T00:00:00.0000001' AS datetime2(7))
