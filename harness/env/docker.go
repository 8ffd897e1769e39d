package env

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/chronicleweaver/chronicleweaver/harness/subject"
	"github.com/chronicleweaver/chronicleweaver/internal/proc"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
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
	// Subject is what a service container is (harness/subject): nil or
	// ours is this module's service. A foreign subject's ServiceImage
	// (BuildSubjectImage) runs its run.command with the environment
	// contract (APP_HOST=0.0.0.0, APP_PORT, DATABASE_URL, REDIS_URL,
	// WORKER_COUNT, INSTANCE_ID) and its run.env; every fault applies alike.
	Subject *subject.Subject
}

func (o DockerOptions) foreign() bool { return o.Subject != nil && !o.Subject.Ours }

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
// serialised. Its host ports come from internal/proc's one port registry,
// as the local backend's do.
//
// The backend is cut by concern: docker.go starts, describes and closes it,
// docker_faults.go injects faults, docker_node.go probes, measures and
// reads the logs of one container, docker_image.go finds and builds the
// images.
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
	if o.Subject != nil && len(o.Subject.Processes) > 0 {
		return nil, fmt.Errorf("env: subject %s is several processes: not supported by the docker backend yet", o.Subject.Name)
	}
	svcImage := o.ServiceImage
	if svcImage == "" && !o.foreign() {
		svcImage = strings.TrimSpace(os.Getenv(EnvServiceImage))
	}
	if svcImage == "" && o.foreign() {
		return nil, fmt.Errorf("env: subject %s: no image (build it with BuildSubjectImage, or pass --service-image)", o.Subject.Name)
	}
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

	if o.foreign() {
		d.shutdown = o.Subject.Run.ShutdownTimeout.D()
		if _, err := subject.Argv(o.Subject.Run.Command, nil); err != nil {
			return nil, fmt.Errorf("env: subject %s: %w", o.Subject.Name, err)
		}
	} else {
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
	}

	ports, err := proc.ReservePorts(2 + o.Services)
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
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
		// The service listens on 127.0.0.1 by default; in its container
		// it must listen on every interface (the image says so too).
		"APP_HOST": "0.0.0.0",
	}
	for k, v := range d.opts.Settings {
		env[k] = v
	}
	if d.opts.foreign() {
		env["PYTHONUNBUFFERED"] = "1"
		env["PYTHONDONTWRITEBYTECODE"] = "1"
		if env["WORKER_COUNT"] == "" {
			env["WORKER_COUNT"] = defaultWorkerCount
		}
		vars := map[string]string{}
		for _, k := range subject.Vars {
			vars[k] = env[k]
		}
		for _, kv := range d.opts.Subject.Environment(vars) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
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
	if d.opts.foreign() {
		// The image's folder and user are the subject's (BuildSubjectImage);
		// the command is expanded with this container's contract.
		r.Cmd, _ = subject.Argv(d.opts.Subject.Run.Command, r.Env) // checked by StartDocker
	}
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
			port, perr := proc.ReservePort()
			if perr != nil {
				return fmt.Errorf("env: start %s: %w", n.name, err)
			}
			proc.ReleasePorts(n.hostPort)
			n.hostPort = port
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

// --- accessors ---

// DockerMaxConns caps the load's connections to each service container.
// Every connection from the host goes through Docker's userland port proxy,
// and the proxy of Docker 20.10 (the reference machine's) stops listening
// for good on its first accept error: an open load against a service that
// stalls (crash-redis: 800 req/s, each waiting up to 5 s while Redis is
// down) opened about 2,800 connections at once, the proxy died within a
// second, and the service ran on, unreachable from the host (the run then
// waited on its readiness until CI's time ran out).
const DockerMaxConns = 256

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
		proc.ReleasePorts(n.hostPort)
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
