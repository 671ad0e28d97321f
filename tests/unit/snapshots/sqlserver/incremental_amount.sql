SELECT CAST(MAX([amount]) * 100 AS bigint) FROM [Sales].[Txn History] WHERE [amount] > CAST(1234.56 AS decimal(15,2))
