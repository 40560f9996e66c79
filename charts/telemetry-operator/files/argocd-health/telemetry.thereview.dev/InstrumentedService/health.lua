-- Argo CD health of an InstrumentedService, from the conditions the operator writes.
-- Ready -> Healthy. Ready=False is a state the operator cannot resolve by itself (missing pipeline,
-- target or container, a field conflict, a pipeline that does not scrape) -> Degraded with its reason.
-- No status yet or an unobserved generation -> Progressing.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and
    (obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation) then
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
for _, cond in ipairs(obj.status.conditions) do
  if cond.type == "Ready" then
    local message = cond.reason
    if cond.message ~= nil and cond.message ~= "" then
      message = cond.reason .. ": " .. cond.message
    end
    if cond.status == "True" then
      return { status = "Healthy", message = message }
    end
    return { status = "Degraded", message = message }
  end
end
return hs
