-- Argo CD health check for ModelDeployments (serving.mlflow-operator.io).
-- Install it under resource.customizations.health.serving.mlflow-operator.io_ModelDeployment
-- in the argocd-cm ConfigMap (see docs/gitops.md). It reads the kstatus
-- conditions the operator writes:
--   Ready=True                      -> Healthy
--   Stalled=True                    -> Degraded (a failed version, an invalid spec)
--   Ready=False, AwaitingApproval   -> Suspended (a verified version waits for a
--                                      person: spec.rollout.approval Manual)
--   Ready=False without Reconciling -> Degraded
--   otherwise                       -> Progressing (resolving, building, rolling out)
-- spec.suspend                      -> Suspended
local hs = {}
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Reconciliation is suspended"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
if obj.metadata.generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to handle the latest spec"
  return hs
end
local ready = nil
local stalled = nil
local reconciling = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    ready = c
  elseif c.type == "Stalled" then
    stalled = c
  elseif c.type == "Reconciling" then
    reconciling = c
  end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if ready ~= nil and ready.status == "False" and ready.reason == "AwaitingApproval" and (reconciling == nil or reconciling.status ~= "True") then
  hs.status = "Suspended"
  hs.message = ready.message or ""
  return hs
end
if ready ~= nil and ready.status == "False" and (reconciling == nil or reconciling.status ~= "True") then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = ready.reason .. ": " .. (ready.message or "")
else
  hs.message = "Reconciling"
end
return hs
