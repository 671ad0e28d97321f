WITH recent AS (SELECT * FROM rpt.balances WHERE as_of > '2024-01-01')
SELECT [account_id], CONVERT(varchar(48), [balance]) AS [balance], CONVERT(varchar(40), [as_of], 126) AS [as_of] FROM (
SELECT * FROM recent
) AS [_ff_q]
