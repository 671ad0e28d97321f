"""The Context facade and the job graph."""
