package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Labels on everything the provider makes.
const (
	// ManagedByLabel=ManagedBy marks the namespaces and pods of pathcost runs.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "pathcost"
	// OwnerLabel holds the run's owner: HOST.PID.START (see Owner).
	OwnerLabel = "pathcost.dev/owner"
	// KeepLabel=true marks a namespace kept for debugging (-keep): never swept.
	KeepLabel = "pathcost.dev/keep"
	// ScenarioLabel holds the scenario a namespace realises.
	ScenarioLabel = "pathcost.dev/scenario"
	// RolePodLabel holds a pod's role: client, server or sampler.
	RolePodLabel = "pathcost.dev/role"
)

// Owner identifies the process a run belongs to, across PID reuse: the host name, the PID and the
// process's start time (clock ticks after boot).
type Owner struct {
	Host  string
	PID   int
	Start uint64
}

// Self is the owner of this process's runs.
func Self() (Owner, error) {
	host, err := os.Hostname()
	if err != nil {
		return Owner{}, fmt.Errorf("owner: host name: %w", err)
	}
	p, err := procfs.Self()
	if err != nil {
		return Owner{}, fmt.Errorf("owner: /proc/self: %w", err)
	}
	st, err := p.Stat()
	if err != nil {
		return Owner{}, fmt.Errorf("owner: /proc/self/stat: %w", err)
	}
	return Owner{Host: labelHost(host), PID: os.Getpid(), Start: st.Starttime}, nil
}

var notLabelChars = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// labelHost makes a host name fit a label value with the PID and start time (63 characters):
// dots and other characters become "-", at most 30 characters are kept.
func labelHost(h string) string {
	h = strings.Trim(notLabelChars.ReplaceAllString(h, "-"), "-")
	if len(h) > 30 {
		h = strings.Trim(h[:30], "-")
	}
	if h == "" {
		h = "unknown"
	}
	return h
}

// String is the label value: HOST.PID.START.
func (o Owner) String() string { return fmt.Sprintf("%s.%d.%d", o.Host, o.PID, o.Start) }

// ParseOwner parses a label value made by Owner.String.
func ParseOwner(s string) (Owner, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return Owner{}, fmt.Errorf("owner %q: want HOST.PID.START", s)
	}
	j := strings.LastIndexByte(s[:i], '.')
	if j <= 0 {
		return Owner{}, fmt.Errorf("owner %q: want HOST.PID.START", s)
	}
	pid, err := strconv.Atoi(s[j+1 : i])
	if err != nil || pid <= 0 {
		return Owner{}, fmt.Errorf("owner %q: bad pid", s)
	}
	start, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return Owner{}, fmt.Errorf("owner %q: bad start time", s)
	}
	return Owner{Host: s[:j], PID: pid, Start: start}, nil
}

// Gone says whether the owner's process has ended: it ran on this host (me.Host) and no process
// with its PID and start time is running. Owners on other hosts are never gone (we cannot tell).
func (o Owner) Gone(me Owner) bool {
	if o.Host != me.Host {
		return false
	}
	p, err := procfs.NewProc(o.PID)
	if err != nil {
		return true
	}
	st, err := p.Stat()
	if err != nil {
		return true
	}
	return st.Starttime != o.Start || st.State == "Z" || st.State == "X"
}

// NamespaceName is pathcost-SCENARIO-RANDOM, with the scenario made DNS-safe (gr+istio → gr-istio).
func NamespaceName(scenario string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := strings.Trim(regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(strings.ToLower(scenario), "-"), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	return "pathcost-" + s + "-" + hex.EncodeToString(b)
}

// namespace returns the namespace object of a run.
func namespace(name, scenario string, owner Owner, extra map[string]string) *corev1.Namespace {
	l := map[string]string{ManagedByLabel: ManagedBy, OwnerLabel: owner.String(), ScenarioLabel: strings.ReplaceAll(scenario, "+", "_")}
	for k, v := range extra {
		l[k] = v
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

// ownedSelector selects the namespaces of one owner, or of every pathcost run (zero Owner).
func ownedSelector(o Owner) string {
	set := labels.Set{ManagedByLabel: ManagedBy}
	if o.PID != 0 {
		set[OwnerLabel] = o.String()
	}
	return labels.SelectorFromSet(set).String()
}

// deleteNamespace deletes ns and waits until it is gone (its pods and Services with it), at most
// wait. A namespace already gone is not an error.
func deleteNamespace(ctx context.Context, cs kubernetes.Interface, ns string, wait time.Duration) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	deadline := time.Now().Add(wait)
	for {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s still there %s after its deletion (kubectl get all -n %s)", ns, wait, ns)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete namespace %s: %w", ns, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// ownedNamespaces lists the namespaces of owner (every pathcost namespace for a zero Owner).
func ownedNamespaces(ctx context.Context, cs kubernetes.Interface, o Owner) ([]corev1.Namespace, error) {
	l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ownedSelector(o)})
	if err != nil {
		return nil, fmt.Errorf("list namespaces (%s): %w", ownedSelector(o), err)
	}
	return l.Items, nil
}

// sweep deletes the namespaces of pathcost runs on this host whose process is gone (not those kept
// with -keep, nor those of other hosts), and returns what it deleted.
func sweep(ctx context.Context, cs kubernetes.Interface, me Owner) ([]string, error) {
	nss, err := ownedNamespaces(ctx, cs, Owner{})
	if err != nil {
		return nil, err
	}
	var swept []string
	var errs []string
	for _, ns := range nss {
		if ns.Labels[KeepLabel] == "true" || ns.DeletionTimestamp != nil {
			continue
		}
		o, err := ParseOwner(ns.Labels[OwnerLabel])
		if err != nil || !o.Gone(me) {
			continue
		}
		if err := deleteNamespace(ctx, cs, ns.Name, 90*time.Second); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		swept = append(swept, ns.Name)
	}
	if len(errs) > 0 {
		return swept, fmt.Errorf("sweep: %s", strings.Join(errs, "; "))
	}
	return swept, nil
}
