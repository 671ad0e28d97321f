SELECT [account_id], CONVERT(varchar(48), [balance]) AS [balance], CONVERT(varchar(40), [as_of], 126) AS [as_of] FROM (
SELECT account_id, balance, as_of FROM rpt.balances ORDER BY account_id -- newest first
OFFSET 0 ROWS
) AS [_ff_q]
