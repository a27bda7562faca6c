-- A tiny health check that exercises Argo CD's calling convention; it is not
-- the operator's real health check. spec.mode picks a misbehaviour.
local hs = {}
local mode = obj.spec and obj.spec.mode
if mode == "bad-status" then
  -- Not one of Argo's statuses: Argo answers Unknown with its own message.
  return {status = "Fine", message = "this message is dropped"}
elseif mode == "error" then
  error("spec.mode asks for an error")
elseif mode == "not-a-table" then
  return "Healthy"
elseif mode == "endless" then
  while true do end
end

if obj.status ~= nil and obj.status.conditions ~= nil then
  -- A list in the object is a 1-based Lua table.
  local first = obj.status.conditions[1]
  if first.type == "Ready" and first.status == "True" then
    hs.status = "Healthy"
    -- string is open for built-in scripts; numbers arrive as Lua numbers.
    hs.message = string.format("%s (generation %d, %d conditions)",
      first.message, obj.status.observedGeneration, #obj.status.conditions)
    return hs
  end
  if first.type == "Ready" and first.status == "False" then
    hs.status = "Degraded"
    hs.message = first.message
    return hs
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the operator"
return hs
