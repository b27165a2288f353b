package kube

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// RoleLabel is the node label that places pods: tcprole=client|forward|server (nskube sets it; on
// a cluster of your own, label the nodes to choose them).
const RoleLabel = "tcprole"

// Container is the name of the tcpload container in every pod the provider makes.
const Container = "tcpload"

// PodOptions describe a tcpload pod.
type PodOptions struct {
	Namespace, Name string
	// Node pins the pod to this node (required node affinity on metadata.name, so the scheduler
	// still honours taints and resources).
	Node string
	// Role is "client", "server" or "sampler" (label pathcost.dev/role).
	Role        string
	Image       string
	PullPolicy  corev1.PullPolicy
	Args        []string
	HostNetwork bool
	// Port is exposed as a container port when non-zero (the server's).
	Port int32
	// Labels and Annotations are added to the pod's.
	Labels, Annotations map[string]string
	// Resources are requested and limited (extended resources such as tke.cloud.tencent.com/eni-ip).
	Resources corev1.ResourceList
	// HostAliases are added to the pod's /etc/hosts.
	HostAliases []corev1.HostAlias
	// ShareProcessNamespace lets tcpload see the sidecar's processes (--watch NAME=comm:PROC).
	ShareProcessNamespace bool
}

// Pod builds a pod that runs tcpload once (restartPolicy Never) with o.Args.
func Pod(o PodOptions) *corev1.Pod {
	labels := map[string]string{ManagedByLabel: ManagedBy, RolePodLabel: o.Role}
	for k, v := range o.Labels {
		labels[k] = v
	}
	c := corev1.Container{
		Name: Container, Image: o.Image, ImagePullPolicy: o.PullPolicy, Args: o.Args,
	}
	if o.Port != 0 {
		c.Ports = []corev1.ContainerPort{{Name: "tcpload", ContainerPort: o.Port, Protocol: corev1.ProtocolTCP}}
	}
	if len(o.Resources) > 0 {
		c.Resources = corev1.ResourceRequirements{Requests: o.Resources.DeepCopy(), Limits: o.Resources.DeepCopy()}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels, Annotations: copyMap(o.Annotations)},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr(int64(1)),
			HostNetwork:                   o.HostNetwork,
			HostAliases:                   o.HostAliases,
			AutomountServiceAccountToken:  ptr(false),
			Containers:                    []corev1.Container{c},
		},
	}
	if o.HostNetwork {
		p.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	if o.ShareProcessNamespace {
		p.Spec.ShareProcessNamespace = ptr(true)
	}
	if o.Node != "" {
		p.Spec.Affinity = NodeAffinity(o.Node)
	}
	return p
}

// NodeAffinity requires the node called node (by metadata.name, as DaemonSets pin their pods).
func NodeAffinity(node string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
}

// RoleAffinity requires a node labelled tcprole=role.
func RoleAffinity(role string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: RoleLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{role}}},
		}}},
	}}
}

func ptr[T any](v T) *T { return &v }

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// containerStatus returns the status of the named container (nil before the kubelet reports it).
func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// imageFailures are container waiting reasons that mean the image will not come.
var imageFailures = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true,
	"InvalidImageName": true, "ImageInspectError": true, "RegistryUnavailable": true,
}

// startFailures are container waiting reasons that mean the container will not start.
var startFailures = map[string]bool{
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"CrashLoopBackOff": true,
}

// podProblem says why a pod will not run its tcpload container ("" = none seen yet), from its
// status: an image that cannot be pulled, a container that cannot start, a pod that failed or
// cannot be scheduled (the latter only once unschedulable for the whole of patience).
func podProblem(p *corev1.Pod, unschedulableFor time.Duration, patience time.Duration) string {
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, st := range statuses {
		if w := st.State.Waiting; w != nil {
			switch {
			case imageFailures[w.Reason]:
				return fmt.Sprintf("image %s cannot be pulled on node %s: %s: %s", st.Image, p.Spec.NodeName, w.Reason, w.Message)
			case startFailures[w.Reason]:
				return fmt.Sprintf("container %s cannot start on node %s: %s: %s", st.Name, p.Spec.NodeName, w.Reason, w.Message)
			}
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		if st := containerStatus(p, Container); st == nil || st.State.Terminated == nil {
			why := fmt.Sprintf("pod failed on node %s before tcpload ran: %s %s", p.Spec.NodeName, p.Status.Reason, p.Status.Message)
			for _, st := range p.Status.InitContainerStatuses {
				if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
					why += fmt.Sprintf("; init container %s exited %d (%s) %s", st.Name, t.ExitCode, t.Reason, t.Message)
				}
			}
			return why
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && unschedulableFor >= patience {
			return fmt.Sprintf("pod cannot be scheduled: %s", c.Message)
		}
	}
	return ""
}

// warningEvents returns the pod's Warning events, oldest first, as "Reason: message (from)" lines:
// what the kubelet and the scheduler said about it.
func warningEvents(ctx context.Context, cs kubernetes.Interface, ns, pod string) []string {
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod).String(),
	})
	if err != nil {
		return []string{"events: " + err.Error()}
	}
	sort.SliceStable(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
	var out []string
	for _, e := range evs.Items {
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		from := e.Source.Component
		if e.Source.Host != "" {
			from += " on " + e.Source.Host
		}
		if from == "" {
			from = e.ReportingController
		}
		out = append(out, fmt.Sprintf("%s: %s (%s)", e.Reason, e.Message, from))
	}
	return out
}

// PodLogs returns the log of a pod's container (the previous instance's with previous).
func PodLogs(ctx context.Context, cs kubernetes.Interface, ns, pod, container string, previous bool) ([]byte, error) {
	rc, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("logs of pod %s/%s: %w", ns, pod, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return b, fmt.Errorf("logs of pod %s/%s: %w", ns, pod, err)
	}
	return b, nil
}

// SplitRecord separates what tcpload wrote to stdout (the JSON record of `--json -`) from what it
// wrote to stderr in a container log, where the two streams are interleaved line by line. The
// record is indented JSON: it runs from a line "{" to a line "}", and every line between starts
// with a space; human lines ("server: ...", "[client] ...") never do. Lines that do not belong to
// the record go to other. A log without a record gives an empty record.
func SplitRecord(log []byte) (record, other []byte) {
	var rec, rest bytes.Buffer
	in, done := false, false
	for _, l := range strings.SplitAfter(string(log), "\n") {
		if l == "" {
			continue
		}
		line := strings.TrimRight(l, "\n")
		switch {
		case !in && !done && line == "{":
			in = true
			rec.WriteString("{\n")
		case in && line == "}":
			rec.WriteString("}\n")
			in, done = false, true
		case in && strings.HasPrefix(line, " "):
			rec.WriteString(line + "\n")
		default:
			rest.WriteString(l)
		}
	}
	if in { // an unfinished record is not a record
		rest.Write(rec.Bytes())
		rec.Reset()
	}
	return rec.Bytes(), rest.Bytes()
}
