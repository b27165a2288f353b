package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pathcost/pathcost/pkg/topo"
)

// access is one verb on one resource the provider needs.
type access struct {
	verb, resource, subresource string
	clusterWide                 bool // list across namespaces / cluster-scoped
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	return a.verb + " " + r
}

// needs lists what a scenario needs the user to be allowed.
func needs(s topo.Spec) []access {
	out := []access{
		{verb: "list", resource: "nodes", clusterWide: true},
		{verb: "create", resource: "namespaces", clusterWide: true},
		{verb: "delete", resource: "namespaces", clusterWide: true},
		{verb: "list", resource: "namespaces", clusterWide: true},
		{verb: "create", resource: "pods"},
		{verb: "get", resource: "pods"},
		{verb: "delete", resource: "pods"},
		{verb: "get", resource: "pods", subresource: "log"},
		{verb: "get", resource: "serviceaccounts"},
	}
	if s.Kind == topo.KindNodePort {
		out = append(out, access{verb: "create", resource: "services"}, access{verb: "list", resource: "services", clusterWide: true})
	}
	if s.Istio {
		out = append(out, access{verb: "create", resource: "services"}, access{verb: "create", resource: "secrets"}, access{verb: "create", resource: "configmaps"})
	}
	return out
}

// checkRBAC asks the API server (SelfSubjectAccessReview) whether this user may do what s needs;
// a refusal names the verb and the resource.
func (k *Kube) checkRBAC(ctx context.Context, s topo.Spec) error {
	var denied []string
	for _, a := range needs(s) {
		ra := &authv1.ResourceAttributes{Verb: a.verb, Resource: a.resource, Subresource: a.subresource}
		if !a.clusterWide {
			ra.Namespace = "pathcost-check" // any namespace of ours: namespaced permission in a fresh namespace
		}
		r, err := k.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("%s: RBAC check (%s): %w", k.host(), a, err)
		}
		if !r.Status.Allowed {
			why := r.Status.Reason
			if why == "" {
				why = "not allowed"
			}
			denied = append(denied, fmt.Sprintf("verb %q on resource %q (%s)", a.verb, strings.TrimSuffix(a.resource+"/"+a.subresource, "/"), why))
		}
	}
	if len(denied) > 0 {
		return fmt.Errorf("%s: RBAC forbids what scenario %s needs: %s", k.host(), s.Name, strings.Join(denied, "; "))
	}
	return nil
}

// ParseKV parses "k=v,k2=v2" (the -pod-annotations flag); an empty string gives nil.
func ParseKV(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// ParseResources parses "name=qty,..." (the -pod-resources flag) into a resource list.
func ParseResources(s string) (corev1.ResourceList, error) {
	kv, err := ParseKV(s)
	if err != nil || kv == nil {
		return nil, err
	}
	out := corev1.ResourceList{}
	for k, v := range kv {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("resource %s=%q: %w", k, v, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}

func kvString(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func resourceString(r corev1.ResourceList) string {
	if len(r) == 0 {
		return "(none)"
	}
	var out []string
	for k, v := range r {
		out = append(out, string(k)+"="+v.String())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
