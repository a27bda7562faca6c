-- Shows what a failing `health argocd-test` run looks like (exit 1): one case
-- expects the wrong status, one raises an error, which fails the case in Argo
-- CD's harness too.
if obj.spec.mode == "error" then
  error("spec.mode asks for an error")
end
return {status = "Healthy", message = "always healthy"}
