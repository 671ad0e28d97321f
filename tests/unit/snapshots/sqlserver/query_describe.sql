EXEC sp_describe_first_result_set @tsql = N'SELECT account_id, balance, as_of FROM rpt.balances ORDER BY account_id -- newest first', @params = NULL, @browse_information_mode = 0
