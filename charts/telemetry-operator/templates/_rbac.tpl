{{/*
The operator's namespaced permissions, in two parts (the ClusterRole has `namespaces get` between
them): granted cluster-wide by the ClusterRole (no watchNamespace) or by a Role in the watched
namespace only (watchNamespace set). The uninstall hook runs as the same ServiceAccount.
*/}}
{{- define "telemetry-operator.namespacedRules1" }}
  # The two custom resources: watched, finalizer added/removed (patch), status applied.
  - apiGroups: ["telemetry.thereview.dev"]
    resources: ["telemetrypipelines", "instrumentedservices"]
    verbs: ["get", "list", "watch", "patch"]
  # The uninstall hook deletes InstrumentedServices (after taking their injection back), then
  # TelemetryPipelines (foreground, so their collectors are garbage-collected before the CRDs go).
  - apiGroups: ["telemetry.thereview.dev"]
    resources: ["instrumentedservices", "telemetrypipelines"]
    verbs: ["delete"]
  - apiGroups: ["telemetry.thereview.dev"]
    resources: ["telemetrypipelines/status", "instrumentedservices/status"]
    verbs: ["get", "patch"]
  # Owner references with blockOwnerDeletion on a pipeline's children.
  - apiGroups: ["telemetry.thereview.dev"]
    resources: ["telemetrypipelines/finalizers"]
    verbs: ["update"]
  # Collector workloads (applied, pruned on a switch of kind: a scraping gateway with more than one
  # replica is a StatefulSet, its ordinals shard the scrape targets) and instrumented workloads
  # (patched only).
  - apiGroups: ["apps"]
    resources: ["deployments", "statefulsets", "daemonsets"]
    verbs: ["get", "list", "watch", "create", "patch", "delete"]
  # A gateway's HorizontalPodAutoscaler (spec.autoscaling) and PodDisruptionBudget (more than one
  # replica): applied, and deleted when no longer wanted.
  - apiGroups: ["autoscaling"]
    resources: ["horizontalpodautoscalers"]
    verbs: ["get", "create", "patch", "delete"]
  - apiGroups: ["policy"]
    resources: ["poddisruptionbudgets"]
    verbs: ["get", "create", "patch", "delete"]
  # A pipeline's ConfigMap and Service are watched for drift; its ServiceAccount is applied.
  - apiGroups: [""]
    resources: ["configmaps", "services"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: [""]
    resources: ["serviceaccounts"]
    verbs: ["get", "create", "patch"]
{{- end }}
{{- define "telemetry-operator.namespacedRules2" }}
  # Only to check that referenced Secrets and keys exist; values are never read into configs.
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
  # The collectors' pod discovery: RoleBindings of the chart's discovery role (templates/
  # collector-discovery.yaml), one per namespace a pipeline scrapes; listed and deleted to prune those
  # no longer wanted. The operator binds that one role (`bind`, below) without holding what it grants.
  - apiGroups: ["rbac.authorization.k8s.io"]
    resources: ["rolebindings"]
    verbs: ["get", "list", "create", "patch", "delete"]
  # Collector pods are watched for the rollout's health (image pull errors, crash loops).
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch"]
  # A pipeline's NetworkPolicy (OTLP only from the namespaces that may send to it).
  - apiGroups: ["networking.k8s.io"]
    resources: ["networkpolicies"]
    verbs: ["get", "create", "patch", "delete"]
  # Events on the reconciled objects.
  - apiGroups: ["events.k8s.io"]
    resources: ["events"]
    verbs: ["create", "patch"]
{{- end }}

{{/*
The discovery role: its kind (a ClusterRole for a cluster-wide install, a Role in the watched
namespace for a namespaced one, so a namespace admin can install the chart) and name.
*/}}
{{- define "telemetry-operator.discoveryRoleKind" -}}
{{- if .Values.watchNamespace }}Role{{ else }}ClusterRole{{ end -}}
{{- end }}
{{- define "telemetry-operator.discoveryRoleName" -}}
{{ include "telemetry-operator.fullname" . }}-collector-discovery
{{- end }}
