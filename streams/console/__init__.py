"""The curator console: server-rendered pages on the worker's HTTP server (courses, students, the
model), behind the read API's token. routes -> data (queries) -> views (view-models) -> pages
(HTML) -> svg (charts); everything below routes and data is pure."""
