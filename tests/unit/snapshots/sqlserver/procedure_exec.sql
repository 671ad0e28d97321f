EXEC [rpt].[usp_balances] @as_of = %s, @branch = %s
