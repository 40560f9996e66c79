-- Argo CD health of a TelemetryPipeline, from the conditions the operator writes.
-- Stalled/Degraded (invalid config, failed collector rollout) -> Degraded; Ready -> Healthy;
-- anything else (no status yet, an unobserved generation, pods rolling) -> Progressing.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and
    (obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation) then
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
local c = {}
for _, cond in ipairs(obj.status.conditions) do
  c[cond.type] = cond
end
local function describe(cond)
  if cond.message ~= nil and cond.message ~= "" then
    return cond.reason .. ": " .. cond.message
  end
  return cond.reason
end
if c.Stalled ~= nil and c.Stalled.status == "True" then
  return { status = "Degraded", message = describe(c.Stalled) }
end
if c.Degraded ~= nil and c.Degraded.status == "True" then
  return { status = "Degraded", message = describe(c.Degraded) }
end
if c.Ready ~= nil and c.Ready.status == "True" then
  return { status = "Healthy", message = describe(c.Ready) }
end
if c.Ready ~= nil then
  hs.message = describe(c.Ready)
end
return hs
