{{/* The chart's name. */}}
{{- define "shopify-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object. */}}
{{- define "shopify-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of the cluster-scoped objects (ClusterRole, ClusterRoleBinding): they
carry the release namespace, so two releases of the same name in different
namespaces do not overwrite each other's.
*/}}
{{- define "shopify-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "shopify-operator.fullname" .) }}
{{- end }}

{{- define "shopify-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "shopify-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "shopify-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shopify-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "shopify-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shopify-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "shopify-operator.leaseName" -}}
{{- default (include "shopify-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "shopify-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules on the watched resources, the same in both modes (a ClusterRole
cluster-wide, a Role in watchNamespace). Each is what the operator does:
  shopifyshops           watch (get/list/watch); patch: the finalizer
                         shopify-operator.dev/cleanup (merge patch)
  shopifyshops/status    patch: server-side apply, field manager shopify-operator
  shopifyshops/finalizers update: needed to create Jobs owned by a shop
                         (blockOwnerDeletion) where the OwnerReferencesPermission-
                         Enforcement admission plugin runs (e.g. OpenShift);
                         grants nothing the patch above does not
  secrets                get/list/watch: the token Secret, watched for rotation;
                         update: storing a refreshed or migrated token (one
                         resourceVersion-guarded replace) and an OAuth grant;
                         create: the token Secret of a first OAuth install
                         (never delete)
  ingresses              get/list/watch: the webhook host, watched for changes
  jobs                   get/list/watch/create/delete: the sync Jobs (history)
  events (events.k8s.io) create/patch: kube-runtime's Recorder (patch: series)
  certificates           get/list/watch: the certificate gate reads the Ready
    (cert-manager.io)    condition of the Ingress TLS Secret's Certificate
*/}}
{{- define "shopify-operator.watchedRules" -}}
- apiGroups: ["shopify-operator.dev"]
  resources: ["shopifyshops"]
  verbs: ["get", "list", "watch", "patch", "create"]
- apiGroups: ["shopify-operator.dev"]
  resources: ["shopifyshops/status"]
  verbs: ["patch"]
- apiGroups: ["shopify-operator.dev"]
  resources: ["shopifyapps"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["shopify-operator.dev"]
  resources: ["shopifyapps/status"]
  verbs: ["patch"]
- apiGroups: ["shopify-operator.dev"]
  resources: ["shopifyshops/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
get on three CRDs, by name (never list, never another CRD):
  shopifyshops.shopify-operator.dev  the start-up check: its own CRDs are installed
  shopifyapps.shopify-operator.dev
  certificates.cert-manager.io       the certificate gate: is cert-manager installed?
*/}}
{{- define "shopify-operator.crdRule" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  resourceNames: ["shopifyshops.shopify-operator.dev", "shopifyapps.shopify-operator.dev", "certificates.cert-manager.io"]
  verbs: ["get"]
{{- end }}
