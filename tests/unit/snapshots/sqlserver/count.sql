SELECT COUNT_BIG(*) FROM [Sales].[Txn History]
