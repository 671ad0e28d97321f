SELECT MAX([id]) FROM [Sales].[Txn History] WHERE [id] > CAST(41 AS int)
