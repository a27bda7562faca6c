-- Argo CD health of a shopify-operator.dev ShopifyShop, read from the
-- conditions the operator writes (kstatus conventions): Ready, Reconciling,
-- Stalled, each with observedGeneration, and status.observedGeneration.
--
--   Degraded     Stalled=True: nothing moves until a person acts (token
--                revoked, Secret missing, app uninstalled, invalid schedule,
--                ...), or Ready=False for another lasting reason.
--   Progressing  no report yet on this generation, or Reconciling=True:
--                the operator is making Shopify match (a host change, a
--                retry after a Shopify error) and needs nobody.
--   Suspended    managementPolicy Observe: the operator reports and changes
--                nothing, by a person's choice (like a paused Deployment),
--                drift included; what needs a person besides is Degraded.
--   Healthy      Ready=True for the current generation.
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator is removing what deletionPolicy asks"
  return hs
end

local generation = obj.metadata.generation
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's first report"
  return hs
end
local conditions = obj.status.conditions

-- A condition counts only if written for this generation.
local function current(type)
  local c = condition(conditions, type)
  if c ~= nil and (c.observedGeneration == nil or c.observedGeneration == generation) then
    return c
  end
  return nil
end

local observe = obj.spec ~= nil and obj.spec.managementPolicy == "Observe"
local paused = "managementPolicy Observe: the operator changes nothing; "

local stalled = current("Stalled")
if stalled ~= nil and stalled.status == "True" then
  -- Drift is what Observe reports; anything else needs a person anyway.
  if observe and stalled.reason == "DriftDetected" then
    hs.status = "Suspended"
    hs.message = paused .. describe(stalled)
    return hs
  end
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local reconciling = current("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = current("Ready")
if ready == nil or (obj.status.observedGeneration ~= nil and obj.status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. tostring(generation)
  return hs
end

local synced = ""
if obj.status.webhooksInSync ~= nil then
  synced = "webhooks " .. obj.status.webhooksInSync .. " in sync"
  if obj.status.webhookHost ~= nil then
    synced = synced .. " at " .. obj.status.webhookHost
  end
end

if observe then
  hs.status = "Suspended"
  if ready.status == "True" then
    hs.message = paused .. synced
  else
    hs.message = paused .. describe(ready)
  end
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  if synced ~= "" then
    hs.message = synced
  else
    hs.message = describe(ready)
  end
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready)
return hs
