SELECT CONVERT(varchar(40), MAX([booked_on]), 23) FROM [Sales].[Txn History] WHERE [booked_on] > CAST(N'2024-06-30' AS date)
