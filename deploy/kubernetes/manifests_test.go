// Schema and consistency checks of the Kubernetes manifests in this
// folder: each document is decoded strictly (unknown or duplicate fields
// fail) into the k8s.io/api type of its kind; the objects must agree with
// each other and with `tlsring peer` (ports, names, probe paths, mounted
// certificate paths, the rolling-update safety margins); and the real
// binary, built from this repository, is run with the manifest's
// arguments (cluster addresses swapped for loopback ones) and must answer
// the probes' paths. This is a separate module so that the main one does
// not depend on the Kubernetes API packages.

package kubernetes_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded objects of every *.yaml file here.
type manifests struct {
	set     *appsv1.StatefulSet
	service *corev1.Service
	pdb     *policyv1.PodDisruptionBudget
}

func load(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	sep := regexp.MustCompile(`(?m)^---\s*$`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range sep.Split(string(data), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				m.set = &appsv1.StatefulSet{}
				obj = m.set
			case "v1 Service":
				m.service = &corev1.Service{}
				obj = m.service
			case "policy/v1 PodDisruptionBudget":
				m.pdb = &policyv1.PodDisruptionBudget{}
				obj = m.pdb
			default:
				t.Fatalf("%s document %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, tm.Kind, err)
			}
		}
	}
	if m.set == nil || m.service == nil || m.pdb == nil {
		t.Fatalf("want a StatefulSet, a Service and a PodDisruptionBudget: %+v", m)
	}
	return m
}

// decodeStrict decodes a YAML document into obj, refusing unknown and
// duplicate fields (yaml.UnmarshalStrict) and fields spelt in another case:
// UnmarshalStrict goes through encoding/json, which matches names without
// regard to case, where the API server does not. Every key of the document
// must come back, spelt the same, when obj is encoded again.
func decodeStrict(doc []byte, obj any) error {
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	var orig, again any
	if err := yaml.Unmarshal(doc, &orig); err != nil {
		return err
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(out, &again); err != nil {
		return err
	}
	return sameKeys("", orig, again)
}

// sameKeys checks that every map key of orig is in again, recursively.
func sameKeys(path string, orig, again any) error {
	switch o := orig.(type) {
	case map[string]any:
		a, _ := again.(map[string]any)
		for k, v := range o {
			av, ok := a[k]
			if !ok {
				return fmt.Errorf("field %s%s: unknown (misspelt, in another case?) or a zero value, which the manifests should leave out", path, k)
			}
			if err := sameKeys(path+k+".", v, av); err != nil {
				return err
			}
		}
	case []any:
		a, _ := again.([]any)
		if len(a) != len(o) {
			return fmt.Errorf("field %s: %d items decoded of %d", strings.TrimSuffix(path, "."), len(a), len(o))
		}
		for i := range o {
			if err := sameKeys(fmt.Sprintf("%s%d.", path, i), o[i], a[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestStrictDecodingCatchesTypos: the decoding the other tests rely on
// refuses unknown fields, fields in the wrong case and duplicates, so a
// green run means something.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nspec:\n  clusterAddress: None\n",
		"apiVersion: v1\nkind: Service\nspec:\n  clusterIp: None\n",
		"apiVersion: v1\nkind: Service\nspec:\n  ports:\n    - name: quic\n      protocol: UDP\n      prot: 7000\n",
		"apiVersion: v1\nkind: Service\nspec:\n  clusterIP: None\n  clusterIP: 10.0.0.1\n",
	} {
		if err := decodeStrict([]byte(doc), &corev1.Service{}); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
	if err := decodeStrict([]byte("apiVersion: v1\nkind: Service\nspec:\n  clusterIP: None\n"), &corev1.Service{}); err != nil {
		t.Errorf("a good document refused: %v", err)
	}
}

// flags returns the container's -name=value arguments after "peer".
func flags(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != "peer" {
		t.Fatalf("container args %q: want peer first", c.Args)
	}
	out := map[string]string{}
	for _, a := range c.Args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !ok || !strings.HasPrefix(a, "-") {
			t.Fatalf("argument %q: write flags as -name=value", a)
		}
		out[name] = value
	}
	return out
}

func portNamed(t *testing.T, c corev1.Container, name string) corev1.ContainerPort {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("container has no port named %q", name)
	return corev1.ContainerPort{}
}

func TestManifests(t *testing.T) {
	m := load(t)
	set, svc, pdb := m.set, m.service, m.pdb
	pod := set.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	f := flags(t, c)

	// Selectors.
	podLabels := labels.Set(pod.Labels)
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pods' labels %v (%v)", set.Spec.Selector, pod.Labels, err)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not match the pods' labels %v", svc.Spec.Selector, pod.Labels)
	}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match the pods' labels (%v)", pdb.Spec.Selector, err)
	}

	// The headless Service and the member names.
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service: want clusterIP None (headless, per-pod records) and publishNotReadyAddresses (a starting member must be listed before it is ready)")
	}
	if set.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet serviceName %q, want the headless Service %q (pod DNS names)", set.Spec.ServiceName, svc.Name)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service has %d ports, want 1 (quic)", len(svc.Spec.Ports))
	}
	sp := svc.Spec.Ports[0]
	quic := portNamed(t, c, "quic")
	if sp.Protocol != corev1.ProtocolUDP || quic.Protocol != corev1.ProtocolUDP {
		t.Errorf("QUIC ports: Service %s, container %s; want UDP", sp.Protocol, quic.Protocol)
	}
	if sp.TargetPort != intstr.FromString(quic.Name) && sp.TargetPort != intstr.FromInt32(quic.ContainerPort) {
		t.Errorf("Service targetPort %v is not the container's quic port", sp.TargetPort)
	}
	if sp.Port != quic.ContainerPort {
		t.Errorf("Service port %d, container port %d: SRV records carry the Service port, members listen on the container port; keep them equal", sp.Port, quic.ContainerPort)
	}
	domain := "." + svc.Name + ".$(POD_NAMESPACE).svc.cluster.local"
	if want := "$(POD_NAME)" + domain + ":" + strconv.Itoa(int(quic.ContainerPort)); f["listen"] != want {
		t.Errorf("-listen=%s, want %s (the pod's name under the headless Service, as its SRV record names it)", f["listen"], want)
	}
	if f["membership"] != "dns" {
		t.Errorf("-membership=%s, want dns", f["membership"])
	}
	if want := "_" + sp.Name + "._" + strings.ToLower(string(sp.Protocol)) + domain; f["dns-name"] != want {
		t.Errorf("-dns-name=%s, want the Service's SRV name %s", f["dns-name"], want)
	}
	vars := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			vars[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if vars["POD_NAME"] != "metadata.name" || vars["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("env: POD_NAME and POD_NAMESPACE must come from metadata.name and metadata.namespace: %v", vars)
	}
	for _, a := range c.Args {
		for _, v := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
			if _, ok := vars[v[1]]; !ok {
				t.Errorf("argument %q uses $(%s), which no env entry defines", a, v[1])
			}
		}
	}

	// Admin port and probes.
	admin := portNamed(t, c, "admin")
	if _, port, err := net.SplitHostPort(f["admin"]); err != nil || port != strconv.Itoa(int(admin.ContainerPort)) {
		t.Errorf("-admin=%s, want the admin container port %d", f["admin"], admin.ContainerPort)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet probe", name)
			continue
		}
		if p.HTTPGet.Port != intstr.FromString("admin") && p.HTTPGet.Port != intstr.FromInt32(admin.ContainerPort) {
			t.Errorf("%s probe port %v is not the admin port", name, p.HTTPGet.Port)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe path %s, want /readyz (state transfer done, ring reachable)", c.ReadinessProbe.HTTPGet.Path)
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe path %s, want /healthz (a restart does not fix a ring that is merely unreachable)", c.LivenessProbe.HTTPGet.Path)
	}

	// Certificates: -cert, -key and -ca are files of the mounted Secret.
	var secret *corev1.SecretVolumeSource
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			for _, vm := range c.VolumeMounts {
				if vm.Name == v.Name {
					secret = v.Secret
					for flag, key := range map[string]string{"cert": "tls.crt", "key": "tls.key", "ca": "ca.crt"} {
						if want := filepath.Join(vm.MountPath, key); f[flag] != want {
							t.Errorf("-%s=%s, want %s (key %s of Secret %s)", flag, f[flag], want, key, v.Secret.SecretName)
						}
					}
				}
			}
		}
	}
	if secret == nil {
		t.Error("no Secret volume mounted for the certificates")
	} else if secret.DefaultMode != nil && *secret.DefaultMode&0o040 != 0 && pod.Spec.SecurityContext.FSGroup == nil {
		t.Error("the Secret's files are group-readable for a non-root user only with an fsGroup")
	}

	// Rolling updates and disruptions: one member at a time, time to leave.
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || *ru.MaxUnavailable != intstr.FromInt32(1) || ru.Partition == nil {
		t.Errorf("updateStrategy %+v: want RollingUpdate with maxUnavailable 1 and a partition", set.Spec.UpdateStrategy)
	}
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	leave, err := time.ParseDuration(f["leave-timeout"])
	if err != nil {
		t.Errorf("-leave-timeout=%q: %v", f["leave-timeout"], err)
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < preStop+leave+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v: want at least preStop %v + -leave-timeout %v + 5s", g, preStop, leave)
	}
	grace, err1 := time.ParseDuration(f["membership-grace"])
	interval, err2 := time.ParseDuration(f["dns-interval"])
	if err1 != nil || err2 != nil || grace < 3*interval {
		t.Errorf("-membership-grace=%s, -dns-interval=%s: want a grace of at least three polls, so one lost answer moves nothing", f["membership-grace"], f["dns-interval"])
	}
	if rp := c.ReadinessProbe; rp != nil && grace < time.Duration(rp.PeriodSeconds*rp.FailureThreshold)*time.Second+10*time.Second {
		t.Errorf("-membership-grace=%v is short for a restart: a restarted pod must be back within it", grace)
	}

	t.Run("binary", func(t *testing.T) { runManifestArgs(t, c, f) })
}

// runManifestArgs builds tlsring and runs it with the container's
// arguments, cluster addresses swapped for loopback ones (later flags win),
// with the DNS name answered by a server run here; the probe paths must
// answer 200, and SIGTERM must end it cleanly.
func runManifestArgs(t *testing.T, c corev1.Container, f map[string]string) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tlsring")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tlsring")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tlsring: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "certs", "-dir", dir, "-name", "member", "-hosts", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("tlsring certs: %v\n%s", err, out)
	}
	quic := freePort(t, "udp")
	adminAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "tcp")))
	subst := strings.NewReplacer("$(POD_NAME)", "tlsring-0", "$(POD_NAMESPACE)", "default")
	srvName := dns.Fqdn(subst.Replace(f["dns-name"]))
	server := serveSRV(t, srvName, "127.0.0.1.", uint16(quic))

	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = subst.Replace(a)
	}
	args = append(args,
		"-listen=127.0.0.1:"+strconv.Itoa(quic),
		"-dns-server="+server,
		"-admin="+adminAddr,
		"-cert="+filepath.Join(dir, "member.pem"),
		"-key="+filepath.Join(dir, "member-key.pem"),
		"-ca="+filepath.Join(dir, "ca.pem"),
	)
	cmd := exec.Command(bin, args...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("tlsring %s:\n%s", strings.Join(args, " "), logs.String())
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		url := "http://" + adminAddr + p.HTTPGet.Path
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v %v", url, resp, err)
			}
			select {
			case err := <-exited:
				t.Fatalf("tlsring exited: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if !strings.Contains(logs.String(), `"members":["127.0.0.1:`+strconv.Itoa(quic)+`"]`) {
		t.Errorf("the member did not log the member list it resolved through DNS")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("no exit within 30s of SIGTERM")
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveSRV answers SRV queries for name with one record (target, port) on
// a loopback UDP port until the test ends, and returns its address.
func serveSRV(t *testing.T, name, target string, port uint16) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		if len(req.Question) == 1 && strings.EqualFold(req.Question[0].Name, name) && req.Question[0].Qtype == dns.TypeSRV {
			resp.Answer = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 5},
				Priority: 0, Weight: 10, Port: port, Target: target}}
		} else {
			resp.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(resp)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.ShutdownContext(ctx)
	})
	return pc.LocalAddr().String()
}
