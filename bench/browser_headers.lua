-- wrk script: every request is a GET with the header lines a browser sends (the ones of
-- bench/micro_driver.py --headers 8), so the head parser works on a realistic head.
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"
wrk.headers["Accept"] = "text/html,application/xhtml+xml"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
wrk.headers["Accept-Language"] = "en-US,en;q=0.9"
wrk.headers["Cookie"] = "a=b; c=d"
wrk.headers["Connection"] = "keep-alive"
wrk.headers["Cache-Control"] = "no-cache"
