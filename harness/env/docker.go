package env

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// Images. The official images are what online users pull; the offline ones
// are what harness/images/build-offline.sh builds where no registry can be
// reached.
const (
	DefaultPostgresImage = "postgres:17-bookworm"
	DefaultRedisImage    = "redis:7-bookworm"
	OfflinePostgresImage = "chronicleweaver/postgres:15-offline"
	OfflineRedisImage    = "chronicleweaver/redis:7-offline"
	DefaultServiceImage  = "chronicleweaver:local"
)

// Environment variables naming the images (read by compose.yml too).
const (
	EnvPostgresImage = "CHRONICLE_POSTGRES_IMAGE"
	EnvRedisImage    = "CHRONICLE_REDIS_IMAGE"
	EnvServiceImage  = "CHRONICLE_SERVICE_IMAGE"
)

// LabelEnv is the label every container and network of a Docker backend
// carries, with the backend's id as value: after a crash of the harness,
// `docker rm -fv $(docker ps -aq --filter label=chronicleweaver.env)` and
// `docker network prune --filter label=chronicleweaver.env` clean up.
const LabelEnv = "chronicleweaver.env"

// Inside the private network.
const (
	dockerServicePort = "8080"
	dockerPGPassword  = "chronicle"
	dockerPGUser      = "postgres"
)

// DockerOptions configures StartDocker.
type DockerOptions struct {
	Services int               // service containers (>= 1)
	Settings map[string]string // extra service environment (WORKER_COUNT, BATCH_SIZE, ...)
	// Images; "" takes them from CHRONICLE_POSTGRES_IMAGE and
	// CHRONICLE_REDIS_IMAGE, else DefaultImages.
	PostgresImage string
	RedisImage    string
	// ServiceImage; "" takes CHRONICLE_SERVICE_IMAGE, else builds the
	// service from this module's source into DefaultServiceImage (see
	// BuildServiceImage).
	ServiceImage string
	AppendFsync  string // Redis appendfsync: always (default), everysec or no
	// RunDir receives every container's log at Close (service-N.log,
	// postgres.log, redis.log). Created if missing; "" makes a temporary one.
	RunDir string
	Logf   func(format string, args ...any) // lifecycle messages; may be nil
}

// Docker is the Docker backend: PostgreSQL, Redis and the service
// instances as containers (created through testcontainers-go) on a private
// network, each publishing its port on a fixed 127.0.0.1 port chosen up
// front, so Targets and DatabaseURL stay the same across restarts.
//
// Faults go through the Docker API: Kill is SIGKILL (for PostgreSQL too: a
// crash), Terminate a stop with SIGTERM (SIGINT, a fast shutdown, for
// PostgreSQL), Restart a start that waits until the node answers (/ready,
// a PostgreSQL ping, a Redis PING), Pause and Resume the cgroup freezer.
// SetLink cuts a dependency by disconnecting its container from the network
// (LinkCut) or blackholes it by pausing it (LinkBlackhole: the kernel still
// accepts connections and data, nothing answers); LinkSlow is unsupported.
// While a dependency is cut it cannot be reached from the host either.
//
// Its methods are safe for concurrent use; operations on one node are
// serialised.
type Docker struct {
	opts     DockerOptions
	id       string // random; names and labels
	runDir   string
	cli      *client.Client
	net      *tc.DockerNetwork
	pg       *dnode
	redis    *dnode
	services []*dnode
	dbURL    string // host-reachable
	shutdown time.Duration
	info     Info

	lifetime
}

var _ Env = (*Docker)(nil)

// dnode is one container.
type dnode struct {
	name     string // node name: service-N, postgres, redis
	port     string // container port, "5432/tcp"
	hostPort int    // on 127.0.0.1, fixed for the node's life

	opMu sync.Mutex // serialises the operations on the node

	mu      sync.Mutex // guards the fields below
	id      string     // the container; "" until created
	cut     bool       // disconnected by SetLink
	holed   bool       // paused by SetLink
	cpuDone float64    // CPU seconds of the lifetimes that ended
	lastCPU float64    // last reading of the current lifetime
	peakMem int64      // bytes, max over readings
}

func (n *dnode) containerID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

func (n *dnode) hostAddr() string { return "127.0.0.1:" + strconv.Itoa(n.hostPort) }

// --- images and the daemon ---

// dockerClient connects to the daemon named by the environment (DOCKER_HOST
// etc.), negotiating the API version.
func dockerClient() (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("env: docker client: %w", err)
	}
	return cli, nil
}

// DockerAvailable reports whether a Docker daemon answers a ping within 2 s.
func DockerAvailable(ctx context.Context) bool {
	cli, err := dockerClient()
	if err != nil {
		return false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err == nil
}

// ImageExists reports whether the daemon has image locally.
func ImageExists(ctx context.Context, image string) bool {
	cli, err := dockerClient()
	if err != nil {
		return false
	}
	defer cli.Close()
	return imageExists(ctx, cli, image)
}

func imageExists(ctx context.Context, cli *client.Client, image string) bool {
	_, err := cli.ImageInspect(ctx, image)
	return err == nil
}

// DefaultImages returns the PostgreSQL and Redis images to use: the
// CHRONICLE_POSTGRES_IMAGE / CHRONICLE_REDIS_IMAGE variables when set, else
// the official image when it is present locally, else the offline
// look-alike (OfflinePostgresImage / OfflineRedisImage, or
// CHRONICLE_OFFLINE_POSTGRES / CHRONICLE_OFFLINE_REDIS as for
// build-offline.sh) when that is, else the official image (to be pulled).
func DefaultImages(ctx context.Context) (postgres, redis string) {
	cli, err := dockerClient()
	if err != nil {
		return pickImage(ctx, nil, EnvPostgresImage, DefaultPostgresImage, OfflinePostgresImage),
			pickImage(ctx, nil, EnvRedisImage, DefaultRedisImage, OfflineRedisImage)
	}
	defer cli.Close()
	return pickImage(ctx, cli, EnvPostgresImage, DefaultPostgresImage, OfflinePostgresImage),
		pickImage(ctx, cli, EnvRedisImage, DefaultRedisImage, OfflineRedisImage)
}

func pickImage(ctx context.Context, cli *client.Client, envVar, official, offline string) string {
	if v := strings.TrimSpace(os.Getenv(envVar)); v != "" {
		return v
	}
	// build-offline.sh's tags can be renamed as well.
	offlineVar := map[string]string{EnvPostgresImage: "CHRONICLE_OFFLINE_POSTGRES", EnvRedisImage: "CHRONICLE_OFFLINE_REDIS"}[envVar]
	offline = cmp.Or(strings.TrimSpace(os.Getenv(offlineVar)), offline)
	if cli == nil || imageExists(ctx, cli, official) || !imageExists(ctx, cli, offline) {
		return official
	}
	return offline
}

// EnsureImages returns DefaultImages after making sure they are present:
// when one is neither set through its variable nor present locally
// (official or offline), harness/images/build-offline.sh builds the offline
// images (a few minutes; needs root and a reachable Debian archive). Tests
// call it so that they run on a machine without a registry.
func EnsureImages(ctx context.Context, logf func(string, ...any)) (postgres, redis string, err error) {
	postgres, redis = DefaultImages(ctx)
	var missing []string
	for _, im := range []struct{ envVar, image string }{{EnvPostgresImage, postgres}, {EnvRedisImage, redis}} {
		if os.Getenv(im.envVar) == "" && !ImageExists(ctx, im.image) {
			missing = append(missing, im.image)
		}
	}
	if len(missing) == 0 {
		return postgres, redis, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", fmt.Errorf("env: %w", err)
	}
	script := filepath.Join(root, "harness", "images", "build-offline.sh")
	if logf != nil {
		logf("env: %s and no offline look-alike present: running %s", strings.Join(missing, ", "), script)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if logf != nil {
		logf("env: %s (%v):\n%s", filepath.Base(script), time.Since(start).Round(time.Second), bytes.TrimSpace(out))
	}
	if err != nil {
		return "", "", fmt.Errorf("env: %s: %w", script, err)
	}
	postgres, redis = DefaultImages(ctx)
	return postgres, redis, nil
}

var ryukOnce sync.Once

// configureRyuk disables testcontainers' reaper (Ryuk) when its image is
// not present locally, as on a machine without a registry: it could not be
// pulled. It must run before the first testcontainers call of the process;
// an explicit TESTCONTAINERS_RYUK_DISABLED wins. Close removes everything
// either way.
func configureRyuk(ctx context.Context, cli *client.Client) {
	ryukOnce.Do(func() {
		if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); set {
			return
		}
		if !imageExists(ctx, cli, tc.ReaperDefaultImage) {
			os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		}
	})
}

var serviceImages = struct {
	mu   sync.Mutex
	done map[string]bool // tags built by this process
}{done: map[string]bool{}}

// BuildServiceImage builds the service image of service/Dockerfile from this
// module's source and tags it: `go build` of the static binary
// (CGO_ENABLED=0), then a docker build whose context holds only that binary
// (as `make build` + `docker build -f service/Dockerfile bin` do). It runs
// once per process and tag.
func BuildServiceImage(ctx context.Context, tag string, logf func(string, ...any)) error {
	serviceImages.mu.Lock()
	defer serviceImages.mu.Unlock()
	if serviceImages.done[tag] {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "service", "Dockerfile"))
	if err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	dir, err := os.MkdirTemp("", "chronicle-image-")
	if err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	bin := filepath.Join(dir, "chronicleweaver")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./service/cmd/chronicleweaver")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("env: service image: go build: %v\n%s", err, bytes.TrimSpace(out))
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	built := time.Now()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"chronicleweaver", 0o755, binary}} {
		// A fixed time: the build cache then hits when the files are the same.
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(946684800, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("env: service image: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("env: service image: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	cli, err := dockerClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true,
		Labels: map[string]string{"org.opencontainers.image.title": "chronicleweaver"},
	})
	if err != nil {
		return fmt.Errorf("env: service image: docker build: %w", err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return fmt.Errorf("env: service image: docker build: %w", err)
	}
	if logf != nil {
		logf("env: built image %s in %v (go build %v, docker build %v)", tag, time.Since(start).Round(time.Millisecond),
			built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	}
	serviceImages.done[tag] = true
	return nil
}

// readBuildOutput drains a build's JSON message stream and returns its
// error, with the last lines of output for context.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	var lines []string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			lines = append(lines, s)
			if len(lines) > 10 {
				lines = lines[1:]
			}
		}
		if m.Error != "" || m.ErrorDetail.Message != "" {
			msg := m.ErrorDetail.Message
			if msg == "" {
				msg = m.Error
			}
			return fmt.Errorf("%s\n%s", msg, strings.Join(lines, "\n"))
		}
	}
}

// --- start ---

// StartDocker starts PostgreSQL, Redis and o.Services service containers on
// a private network and returns once PostgreSQL and Redis answer and every
// service answers GET /ready with 200. On failure everything created is
// removed again. The caller must Close the result (tests: t.Cleanup).
func StartDocker(ctx context.Context, o DockerOptions) (_ *Docker, err error) {
	if err := checkServices("DockerOptions", "docker", o.Services, o.Settings); err != nil {
		return nil, err
	}
	switch o.AppendFsync {
	case "":
		o.AppendFsync = "always"
	case "everysec", "always", "no":
	default:
		return nil, fmt.Errorf("env: AppendFsync %q: must be everysec, always or no", o.AppendFsync)
	}

	cli, err := dockerClient()
	if err != nil {
		return nil, err
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	_, perr := cli.Ping(pctx, client.PingOptions{})
	pcancel()
	if perr != nil {
		cli.Close()
		return nil, fmt.Errorf("env: no Docker daemon answers: %w", perr)
	}
	configureRyuk(ctx, cli)

	runDir, err := makeRunDir(o.RunDir)
	if err != nil {
		cli.Close()
		return nil, err
	}

	d := &Docker{opts: o, id: randomID(), runDir: runDir, cli: cli}
	d.begin(o.Logf)
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	ctx, cancel := d.startCtx(ctx, 5*defaultWait)
	defer cancel()

	// Images.
	pgImage, rdImage := o.PostgresImage, o.RedisImage
	if pgImage == "" || rdImage == "" {
		p, r := DefaultImages(ctx)
		pgImage, rdImage = cmp.Or(pgImage, p), cmp.Or(rdImage, r)
	}
	svcImage := cmp.Or(o.ServiceImage, strings.TrimSpace(os.Getenv(EnvServiceImage)))
	if svcImage == "" {
		svcImage = DefaultServiceImage
		if err := BuildServiceImage(ctx, svcImage, o.Logf); err != nil {
			return nil, err
		}
	}
	for _, img := range []string{pgImage, rdImage, svcImage} {
		if !imageExists(ctx, cli, img) {
			d.logf("env: image %s is not present locally: Docker will try to pull it (offline: harness/images/build-offline.sh, or set %s / %s)", img, EnvPostgresImage, EnvRedisImage)
		}
	}
	d.opts.PostgresImage, d.opts.RedisImage, d.opts.ServiceImage = pgImage, rdImage, svcImage

	// Settings: validate as the service will; learn SHUTDOWN_TIMEOUT.
	lookup := func(k string) string {
		if k == planted.EnvVar {
			return "" // checked by the service binary, built with its tag
		}
		return d.serviceEnv(0)[k]
	}
	cfg, err := config.FromEnv(lookup)
	if err != nil {
		return nil, fmt.Errorf("env: service settings: %w", err)
	}
	d.shutdown = cfg.ShutdownTime

	ports, err := reservePorts(2 + o.Services)
	if err != nil {
		return nil, err
	}
	d.pg = &dnode{name: Postgres, port: "5432/tcp", hostPort: ports[0]}
	d.redis = &dnode{name: Redis, port: "6379/tcp", hostPort: ports[1]}
	for i := range o.Services {
		d.services = append(d.services, &dnode{name: ServiceNode(i), port: dockerServicePort + "/tcp", hostPort: ports[2+i]})
	}
	d.dbURL = d.hostDatabaseURL()

	d.net, err = tcnetwork.New(ctx, tcnetwork.WithLabels(map[string]string{LabelEnv: d.id}))
	if err != nil {
		return nil, fmt.Errorf("env: create network: %w", err)
	}
	d.logf("env: docker %s: network %s, images %s, %s, %s", d.id, d.net.Name, pgImage, rdImage, svcImage)

	// PostgreSQL and Redis concurrently, then the services.
	err = d.startNodes(ctx, []*dnode{d.pg, d.redis}, func(_ int, n *dnode) tc.ContainerRequest { return d.depRequest(n) })
	if err != nil {
		return nil, err
	}
	err = d.startNodes(ctx, d.services, func(i int, _ *dnode) tc.ContainerRequest { return d.serviceRequest(i) })
	if err != nil {
		return nil, err
	}
	d.info = d.makeInfo(ctx)
	return d, nil
}

// startNodes creates the containers of nodes concurrently, each from
// request(its index, it), and waits until every one is ready.
func (d *Docker) startNodes(ctx context.Context, nodes []*dnode, request func(int, *dnode) tc.ContainerRequest) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.create(ctx, n, func() tc.ContainerRequest { return request(i, n) })
			if errs[i] == nil {
				errs[i] = d.waitReady(ctx, n)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serviceEnv is service i's environment: the connection settings, then
// LOG_LEVEL=info and the Settings.
func (d *Docker) serviceEnv(i int) map[string]string {
	env := map[string]string{
		"APP_PORT":     dockerServicePort,
		"DATABASE_URL": fmt.Sprintf("postgres://%s:%s@%s:5432/%s?sslmode=disable", dockerPGUser, dockerPGPassword, Postgres, chronicleDB),
		"REDIS_URL":    "redis://" + Redis + ":6379/0",
		"INSTANCE_ID":  ServiceNode(i),
		"LOG_LEVEL":    "info",
	}
	for k, v := range d.opts.Settings {
		env[k] = v
	}
	return env
}

func (d *Docker) labels(node string) map[string]string {
	return map[string]string{LabelEnv: d.id, LabelEnv + ".node": node}
}

func (d *Docker) request(n *dnode, image string) tc.ContainerRequest {
	port := dnetwork.MustParsePort(n.port)
	hostPort := strconv.Itoa(n.hostPort)
	return tc.ContainerRequest{
		Name:           "chronicle-" + d.id + "-" + n.name,
		Image:          image,
		Labels:         d.labels(n.name),
		ExposedPorts:   []string{n.port},
		Networks:       []string{d.net.Name},
		NetworkAliases: map[string][]string{d.net.Name: {n.name}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = dnetwork.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}}
		},
	}
}

func (d *Docker) depRequest(n *dnode) tc.ContainerRequest {
	if n == d.pg {
		r := d.request(n, d.opts.PostgresImage)
		r.Env = map[string]string{
			"POSTGRES_USER":     dockerPGUser,
			"POSTGRES_PASSWORD": dockerPGPassword,
			"POSTGRES_DB":       chronicleDB,
		}
		return r
	}
	r := d.request(n, d.opts.RedisImage)
	r.Cmd = []string{"redis-server", "--appendonly", "yes", "--appendfsync", d.opts.AppendFsync}
	return r
}

func (d *Docker) serviceRequest(i int) tc.ContainerRequest {
	r := d.request(d.services[i], d.opts.ServiceImage)
	r.Env = d.serviceEnv(i)
	return r
}

// create creates and starts n's container from mk's request. A host port
// taken in the meantime by another program is replaced (up to 3 tries).
func (d *Docker) create(ctx context.Context, n *dnode, mk func() tc.ContainerRequest) error {
	for attempt := 1; ; attempt++ {
		c, err := tc.GenericContainer(ctx, tc.GenericContainerRequest{
			ContainerRequest: mk(),
			Started:          true,
			Logger:           tcLogger{d},
		})
		if c != nil {
			n.mu.Lock()
			n.id = c.GetContainerID()
			n.mu.Unlock()
		}
		if err == nil {
			d.logf("env: %s started (container %.12s, 127.0.0.1:%d)", n.name, n.containerID(), n.hostPort)
			return nil
		}
		msg := err.Error()
		if attempt < 3 && (strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated")) {
			if rerr := d.removeNode(n); rerr != nil {
				return fmt.Errorf("env: start %s: %w", n.name, errors.Join(err, rerr))
			}
			ports, perr := reservePorts(1)
			if perr != nil {
				return fmt.Errorf("env: start %s: %w", n.name, err)
			}
			releasePort(n.hostPort)
			n.hostPort = ports[0]
			if n == d.pg {
				d.dbURL = d.hostDatabaseURL()
			}
			d.logf("env: %s could not bind its host port, retrying on %d", n.name, n.hostPort)
			continue
		}
		return fmt.Errorf("env: start %s: %w%s", n.name, err, d.logTail(n))
	}
}

// hostDatabaseURL is the service database through PostgreSQL's published port.
func (d *Docker) hostDatabaseURL() string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", dockerPGUser, dockerPGPassword, d.pg.hostAddr(), chronicleDB)
}

// tcLogger sends testcontainers' messages to Logf.
type tcLogger struct{ d *Docker }

func (l tcLogger) Printf(format string, args ...any) { l.d.logf("testcontainers: "+format, args...) }

// --- readiness ---

// waitReady polls n until it answers (a service: GET /ready 200; Redis:
// PING; PostgreSQL: connect and ping), its container stops, or ctx ends
// (60 s when it has no deadline). While n's link is cut it cannot be reached
// from the host: it is then probed from inside its container.
func (d *Docker) waitReady(ctx context.Context, n *dnode) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWait)
		defer cancel()
	}
	start := time.Now()
	last := "no answer yet"
	for i, delay := 0, 10*time.Millisecond; ; i, delay = i+1, min(2*delay, 250*time.Millisecond) {
		err := d.probe(ctx, n)
		if err == nil {
			d.logf("env: %s ready in %v", n.name, time.Since(start).Round(time.Millisecond))
			return nil
		}
		last = err.Error()
		if i%4 == 3 {
			st, ierr := d.state(ctx, n)
			if ierr == nil && !st.Running && !st.Restarting {
				return fmt.Errorf("env: %s exited (code %d) before it was ready (last probe: %s)%s", n.name, st.ExitCode, last, d.logTail(n))
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("env: %s not ready after %v (%v; last probe: %s)%s", n.name, time.Since(start).Round(time.Millisecond), ctx.Err(), last, d.logTail(n))
		case <-t.C:
		}
	}
}

func (d *Docker) probe(ctx context.Context, n *dnode) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	n.mu.Lock()
	cut := n.cut
	n.mu.Unlock()
	if cut {
		cmd := []string{"redis-cli", "ping"}
		if n == d.pg {
			cmd = []string{"pg_isready", "-h", "127.0.0.1", "-U", dockerPGUser, "-d", chronicleDB}
		}
		code, err := d.exec(ctx, n.containerID(), cmd)
		if err == nil && code != 0 {
			err = fmt.Errorf("%s exited %d", cmd[0], code)
		}
		return err
	}
	switch n {
	case d.pg:
		conn, err := pgx.Connect(ctx, d.dbURL)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return conn.Ping(ctx)
	case d.redis:
		return devenv.PingRedis(ctx, n.hostAddr())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.hostAddr()+"/ready", nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/ready: %s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// exec runs cmd in container id and returns its exit code.
func (d *Docker) exec(ctx context.Context, id string, cmd []string) (int, error) {
	res, err := d.cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd})
	if err != nil {
		return 0, err
	}
	if _, err := d.cli.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return 0, err
	}
	for {
		ins, err := d.cli.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// --- node state ---

func (d *Docker) state(ctx context.Context, n *dnode) (*container.State, error) {
	id := n.containerID()
	if id == "" {
		return nil, fmt.Errorf("env: %s has no container", n.name)
	}
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("env: inspect %s: %w", n.name, err)
	}
	if res.Container.State == nil {
		return nil, fmt.Errorf("env: inspect %s: no state", n.name)
	}
	return res.Container.State, nil
}

// Targets are the service base URLs, "http://127.0.0.1:PORT", in node order.
func (d *Docker) Targets() []string {
	t := make([]string, len(d.services))
	for i, s := range d.services {
		t[i] = "http://" + s.hostAddr()
	}
	return t
}

// DatabaseURL is the service database's URL through PostgreSQL's published
// port on 127.0.0.1.
func (d *Docker) DatabaseURL() string { return d.dbURL }

// RedisURL is Redis's URL through its published port on 127.0.0.1.
func (d *Docker) RedisURL() string { return "redis://" + d.redis.hostAddr() + "/0" }

// RunDir is the folder receiving the logs.
func (d *Docker) RunDir() string { return d.runDir }

// ID is the backend's id: the value of the LabelEnv label and part of every
// container name ("chronicle-ID-NODE").
func (d *Docker) ID() string { return d.id }

// ContainerID returns the Docker id of node's container ("" if unknown).
func (d *Docker) ContainerID(node string) string {
	if n := d.node(node); n != nil {
		return n.containerID()
	}
	return ""
}

// Nodes lists service-0..N-1, redis and postgres.
func (d *Docker) Nodes() []string {
	nodes := make([]string, 0, len(d.services)+2)
	for _, s := range d.services {
		nodes = append(nodes, s.name)
	}
	return append(nodes, Redis, Postgres)
}

func (d *Docker) node(name string) *dnode {
	switch name {
	case Postgres:
		return d.pg
	case Redis:
		return d.redis
	}
	for _, s := range d.services {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (d *Docker) isService(n *dnode) bool { return n != d.pg && n != d.redis }

// onNode runs op on node, with ctx also cancelled by Close and the node's
// opMu held. It fails when the env is closed or the node unknown.
func (d *Docker) onNode(ctx context.Context, node string, op func(context.Context, *dnode) error) error {
	if d.ctx.Err() != nil {
		return errClosed
	}
	n := d.node(node)
	if n == nil || n.containerID() == "" {
		return unknownNode(node, d.Nodes())
	}
	ctx, cancel := d.opCtx(ctx)
	defer cancel()
	n.opMu.Lock()
	defer n.opMu.Unlock()
	return op(ctx, n)
}

// Info describes the environment.
func (d *Docker) Info() Info { return d.info.clone() }

func (d *Docker) makeInfo(ctx context.Context) Info {
	info := Info{
		Backend:          "docker",
		Services:         len(d.services),
		Settings:         infoSettings(d.opts.Settings),
		PostgresDurable:  true, // the images' default: fsync on
		RedisPersistence: "aof " + d.opts.AppendFsync,
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, d.dbURL); err == nil {
		_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&info.PostgresVersion)
		conn.Close(ctx)
	}
	if s, err := devenv.RedisCommand(ctx, d.redis.hostAddr(), "INFO", "server"); err == nil {
		for _, line := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				info.RedisVersion = v
			}
		}
	}
	return info
}

// --- faults ---

// Kill sends SIGKILL to node's container (PostgreSQL too: a crash, recovered
// from the WAL at the next start) and waits until it has stopped. A paused
// container is thawed first; killing a stopped node is a no-op.
func (d *Docker) Kill(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		return wrapNode(node, "kill", d.kill(ctx, n))
	})
}

// kill SIGKILLs n if it runs. The caller holds n.opMu.
func (d *Docker) kill(ctx context.Context, n *dnode) error {
	st, err := d.readyToStop(ctx, n)
	if err != nil || !st.Running {
		return err
	}
	if _, err := d.cli.ContainerKill(ctx, n.containerID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return err
	}
	if _, err := d.waitStopped(ctx, n); err != nil {
		return err
	}
	d.lifetimeEnded(n)
	d.logf("env: %s killed", n.name)
	return nil
}

// readyToStop returns n's state and, when n runs, prepares it to be
// stopped: a service's usage is sampled a last time, and a paused container
// is thawed. The caller holds n.opMu.
func (d *Docker) readyToStop(ctx context.Context, n *dnode) (*container.State, error) {
	st, err := d.state(ctx, n)
	if err != nil || !st.Running {
		return st, err
	}
	if d.isService(n) {
		d.sample(ctx, n)
	}
	if st.Paused {
		if _, err := d.cli.ContainerUnpause(ctx, n.containerID(), client.ContainerUnpauseOptions{}); err != nil {
			return nil, err
		}
		n.mu.Lock()
		n.holed = false
		n.mu.Unlock()
	}
	return st, nil
}

// waitStopped waits until n's container is not running and returns its
// exit code.
func (d *Docker) waitStopped(ctx context.Context, n *dnode) (int64, error) {
	w := d.cli.ContainerWait(ctx, n.containerID(), client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			return r.StatusCode, errors.New(r.Error.Message)
		}
		return r.StatusCode, nil
	case err := <-w.Error:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Terminate stops node gracefully and waits for it: SIGTERM (SIGINT, a fast
// shutdown, for PostgreSQL), SIGKILL after a grace period (a service:
// SHUTDOWN_TIMEOUT + 5 s; an error if it was needed or the service did not
// exit 0). Terminating a stopped node is a no-op.
func (d *Docker) Terminate(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		grace := 30 * time.Second
		if d.isService(n) {
			grace = d.shutdown + 5*time.Second
		}
		start := time.Now()
		code, err := d.terminate(ctx, n, grace)
		if err != nil {
			return wrapNode(node, "terminate", err)
		}
		if d.isService(n) && code != 0 {
			return fmt.Errorf("env: terminate %s: exit code %d after SIGTERM%s", node, code, d.logTail(n))
		}
		d.logf("env: %s terminated in %v", node, time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// terminate stops n with its stop signal and returns the exit code; past
// grace Docker kills it and terminate fails. The caller holds n.opMu.
func (d *Docker) terminate(ctx context.Context, n *dnode, grace time.Duration) (int64, error) {
	st, err := d.readyToStop(ctx, n)
	if err != nil {
		return 0, err
	}
	if !st.Running {
		return int64(st.ExitCode), nil
	}
	signal := "SIGTERM"
	if n == d.pg {
		signal = "SIGINT" // fast shutdown; SIGTERM waits for every client to leave
	}
	secs := int(grace.Round(time.Second) / time.Second)
	start := time.Now()
	if _, err := d.cli.ContainerStop(ctx, n.containerID(), client.ContainerStopOptions{Signal: signal, Timeout: &secs}); err != nil {
		return 0, err
	}
	d.lifetimeEnded(n)
	st, err = d.state(ctx, n)
	if err != nil {
		return 0, err
	}
	if time.Since(start) >= grace {
		return int64(st.ExitCode), fmt.Errorf("did not exit within %v of %s: killed", grace, signal)
	}
	return int64(st.ExitCode), nil
}

// Restart starts node again (killing it first if it runs) and returns once
// it answers: a service GET /ready with 200, Redis PING (after loading its
// AOF), PostgreSQL a connection and ping. Ports stay the same.
func (d *Docker) Restart(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		if err := d.kill(ctx, n); err != nil {
			return wrapNode(node, "restart", err)
		}
		if _, err := d.cli.ContainerStart(ctx, n.containerID(), client.ContainerStartOptions{}); err != nil {
			return wrapNode(node, "restart", err)
		}
		return d.waitReady(ctx, n)
	})
}

// Pause freezes node's container (docker pause). It fails if the node is
// not running.
func (d *Docker) Pause(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		_, err := d.cli.ContainerPause(ctx, n.containerID(), client.ContainerPauseOptions{})
		return wrapNode(node, "pause", err)
	})
}

// Resume thaws a paused node (docker unpause).
func (d *Docker) Resume(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		_, err := d.cli.ContainerUnpause(ctx, n.containerID(), client.ContainerUnpauseOptions{})
		return wrapNode(node, "resume", err)
	})
}

// SetLink changes the path from the services to dep (redis or postgres):
// LinkCut disconnects dep's container from the network (its name no longer
// resolves, packets to it go nowhere; the host loses it too), LinkBlackhole
// pauses it (connections are accepted and data taken in by the kernel, but
// nothing answers), LinkOK undoes either. LinkSlow returns an error wrapping
// ErrUnsupported. Blackhole and Pause share the freezer: LinkOK thaws a
// node paused either way.
func (d *Docker) SetLink(ctx context.Context, dep string, mode LinkMode, latency time.Duration) error {
	if dep != Redis && dep != Postgres {
		return fmt.Errorf("env: SetLink: %q is not a dependency (redis, postgres)", dep)
	}
	if mode == LinkSlow {
		return fmt.Errorf("env: SetLink %s: added latency needs tc in the container: %w", dep, ErrUnsupported)
	}
	return d.onNode(ctx, dep, func(ctx context.Context, n *dnode) error { return d.setLink(ctx, n, mode) })
}

// setLink is SetLink on dependency n. The caller holds n.opMu.
func (d *Docker) setLink(ctx context.Context, n *dnode, mode LinkMode) error {
	dep := n.name
	n.mu.Lock()
	cut, holed := n.cut, n.holed
	n.mu.Unlock()
	id := n.containerID()
	var errs []error
	wantCut, wantHole := mode == LinkCut, mode == LinkBlackhole
	switch mode {
	case LinkOK, LinkCut, LinkBlackhole:
	default:
		return fmt.Errorf("env: SetLink %s: unknown mode %q", dep, mode)
	}
	if holed && !wantHole {
		if _, err := d.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
			errs = append(errs, err)
		} else {
			holed = false
		}
	}
	if cut && !wantCut {
		_, err := d.cli.NetworkConnect(ctx, d.net.ID, client.NetworkConnectOptions{
			Container:      id,
			EndpointConfig: &dnetwork.EndpointSettings{Aliases: []string{n.name}},
		})
		if err != nil {
			errs = append(errs, err)
		} else {
			cut = false
		}
	}
	if wantCut && !cut {
		if _, err := d.cli.NetworkDisconnect(ctx, d.net.ID, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
			errs = append(errs, err)
		} else {
			cut = true
		}
	}
	if wantHole && !holed {
		if _, err := d.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
			errs = append(errs, err)
		} else {
			holed = true
		}
	}
	n.mu.Lock()
	n.cut, n.holed = cut, holed
	n.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("env: SetLink %s %s: %w", dep, mode, err)
	}
	d.logf("env: link to %s: %s", dep, mode)
	return nil
}

// --- usage ---

// Usage reports a service node's CPU seconds (user + system, summed over
// its container's lifetimes; a lifetime counts up to the last reading,
// which Kill, Terminate and Restart take just before they stop it) and its
// peak memory in bytes, from docker stats: the cgroup's max_usage (cgroup
// v1; it includes page cache) or, on cgroup v2, the largest usage read.
func (d *Docker) Usage(node string) (cpuSeconds float64, peakRSS int64, err error) {
	n := d.node(node)
	if n == nil {
		return 0, 0, unknownNode(node, d.Nodes())
	}
	if !d.isService(n) {
		return 0, 0, fmt.Errorf("env: usage of %s: only service nodes are measured: %w", node, ErrUnsupported)
	}
	if d.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
		d.sample(ctx, n)
		cancel()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cpuDone + n.lastCPU, n.peakMem, nil
}

// sample reads n's current CPU and memory from docker stats (no-op when it
// does not run).
func (d *Docker) sample(ctx context.Context, n *dnode) {
	id := n.containerID()
	if id == "" {
		return
	}
	res, err := d.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return
	}
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) / 1e9
	mem := int64(s.MemoryStats.MaxUsage)
	if mem == 0 {
		mem = int64(s.MemoryStats.Usage)
	}
	n.mu.Lock()
	n.lastCPU = max(n.lastCPU, cpu)
	n.peakMem = max(n.peakMem, mem)
	n.mu.Unlock()
}

// lifetimeEnded moves the current lifetime's CPU to the finished total.
func (d *Docker) lifetimeEnded(n *dnode) {
	n.mu.Lock()
	n.cpuDone += n.lastCPU
	n.lastCPU = 0
	n.mu.Unlock()
}

// --- logs ---

// logTail returns "\n--- last lines of NODE ---\n..." from n's container
// log, or "".
func (d *Docker) logTail(n *dnode) string {
	id := n.containerID()
	if id == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := d.copyLogs(ctx, id, &buf, "25"); err != nil || buf.Len() == 0 {
		return ""
	}
	return "\n--- last lines of " + n.name + " ---\n" + strings.TrimRight(buf.String(), "\n")
}

// copyLogs writes the container's stdout and stderr (every lifetime) to w.
func (d *Docker) copyLogs(ctx context.Context, id string, w io.Writer, tail string) error {
	rc, err := d.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}

// --- close ---

// Close stops the services (SIGTERM, SIGKILL after 5 s), then Redis and
// PostgreSQL, copies every container's log to RunDir, and removes the
// containers (with their anonymous volumes) and the network; it also
// removes anything else carrying this env's label. It is idempotent.
func (d *Docker) Close() error {
	return d.closeOnce(d.close)
}

func (d *Docker) close() error {
	d.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := func(nodes []*dnode, grace time.Duration) {
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n == nil || n.containerID() == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.opMu.Lock()
				defer n.opMu.Unlock()
				if _, err := d.terminate(ctx, n, grace); err != nil {
					d.logf("env: close %s: %v", n.name, err)
				}
			}()
		}
		wg.Wait()
	}
	stop(d.services, closeGrace)
	stop([]*dnode{d.redis, d.pg}, 15*time.Second)

	var errs []error
	for _, n := range append(append([]*dnode(nil), d.services...), d.redis, d.pg) {
		if n == nil {
			continue
		}
		if id := n.containerID(); id != "" {
			if err := d.saveLog(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, d.removeNode(n))
		releasePort(n.hostPort)
	}
	errs = append(errs, d.sweep(ctx))
	if d.net != nil {
		if err := d.net.Remove(ctx); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("env: remove network %s: %w", d.net.Name, err))
		}
	}
	errs = append(errs, d.cli.Close())
	return errors.Join(errs...)
}

func (d *Docker) saveLog(ctx context.Context, n *dnode) error {
	f, err := os.Create(filepath.Join(d.runDir, n.name+".log"))
	if err != nil {
		return fmt.Errorf("env: keep log: %w", err)
	}
	if err := d.copyLogs(ctx, n.containerID(), f, "all"); err != nil {
		f.Close()
		return fmt.Errorf("env: keep log of %s: %w", n.name, err)
	}
	return f.Close()
}

// removeNode removes n's container and its anonymous volumes.
func (d *Docker) removeNode(n *dnode) error {
	n.mu.Lock()
	id := n.id
	n.id = ""
	n.mu.Unlock()
	if id == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("env: remove %s: %w", n.name, err)
	}
	return nil
}

// sweep removes containers carrying this env's label that are not known
// (created by a request that failed half-way).
func (d *Docker) sweep(ctx context.Context) error {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelEnv+"="+d.id),
	})
	if err != nil {
		return fmt.Errorf("env: list containers: %w", err)
	}
	var errs []error
	for _, c := range res.Items {
		if _, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("env: remove container %.12s: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
