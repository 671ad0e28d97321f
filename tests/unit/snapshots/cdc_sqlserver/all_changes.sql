SELECT c.[__$start_lsn], c.[__$seqval], c.[__$operation], sys.fn_cdc_map_lsn_to_time(c.[__$start_lsn]) AS [__ff_commit_time], c.[ID], c.[Name], c.[Price], c.[Updated], c.[Photo]
FROM cdc.[fn_cdc_get_all_changes_dbo_Product](?, ?, N'all update old') AS c
ORDER BY c.[__$start_lsn], c.[__$seqval], c.[__$operation]
