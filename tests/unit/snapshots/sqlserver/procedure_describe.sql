EXEC sp_describe_first_result_set @tsql = N'EXEC [rpt].[usp_balances] @as_of = N''2024-06-30'', @branch = N''Zürich 100%''', @params = NULL, @browse_information_mode = 0
