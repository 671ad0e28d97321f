SELECT [ID], [Name], [Price], [Updated], [Photo] FROM [dbo].[Product]
