-- wrk script: every request is a POST with a 64 KiB body (wrk adds Content-Length).
wrk.method = "POST"
wrk.body = string.rep("x", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
