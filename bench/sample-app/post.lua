-- wrk script: POST one valid review per request.
wrk.method = "POST"
wrk.body = '{"entity_type":"book","entity_id":"bench-1","rating":4,"author":"bench","title":"t","comment":"load test"}'
wrk.headers["Content-Type"] = "application/json"
