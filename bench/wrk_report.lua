-- wrk script for bench.loadgen: print one line with the completed requests
-- and all errors (non-2xx/3xx statuses included) when wrk stops.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("loadgen: requests=%d errors=%d\n", summary.requests,
      e.connect + e.read + e.write + e.status + e.timeout))
end
