package devenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

const (
	pgInstallHint    = `postgres not found: install it with "apt-get install -y postgresql" or set PG_BIN to the directory holding initdb and postgres`
	redisInstallHint = `redis-server not found: install it with "apt-get install -y redis-server" or set REDIS_SERVER`
)

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func hasPGBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "postgres")) && isExecutable(filepath.Join(dir, "initdb"))
}

// findPostgresBin returns the directory holding initdb and postgres:
// $PG_BIN, else the highest version under /usr/lib/postgresql, else $PATH.
func findPostgresBin() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		if isExecutable(d) { // the path of a binary rather than a directory
			d = filepath.Dir(d)
		}
		if !hasPGBinaries(d) {
			return "", fmt.Errorf("PG_BIN=%q does not contain initdb and postgres: point it at a PostgreSQL bin directory or unset it", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	for _, d := range dirs {
		if hasPGBinaries(d) {
			return d, nil
		}
	}
	for _, name := range []string{"postgres", "initdb"} {
		if p, err := exec.LookPath(name); err == nil {
			if p, err := filepath.EvalSymlinks(p); err == nil && hasPGBinaries(filepath.Dir(p)) {
				return filepath.Dir(p), nil
			}
		}
	}
	return "", fmt.Errorf("%s", pgInstallHint)
}

// versionLess compares dotted numeric versions ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// findRedisServer returns the redis-server binary: $REDIS_SERVER, else $PATH,
// else the usual install locations.
func findRedisServer() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("REDIS_SERVER=%q is not an executable file: point it at redis-server or unset it", p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s", redisInstallHint)
}

var (
	pgVersionRE    = regexp.MustCompile(`\(PostgreSQL\)\s+(\S+)`)
	redisVersionRE = regexp.MustCompile(`\bv=(\S+)`)
)

// binaryVersion runs bin --version and formats the match of re as "name X.Y".
func binaryVersion(bin, name string, re *regexp.Regexp) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return name
	}
	if m := re.FindSubmatch(out); m != nil {
		return name + " " + string(m[1])
	}
	return name
}

// pgUser is the account PostgreSQL runs as.
type pgUser struct {
	cred *syscall.Credential // nil: the current user
	uid  int
	gid  int
}

// postgresUser returns the unprivileged user "nobody" when running as root
// (PostgreSQL refuses to run as root), else the current user.
func postgresUser() (pgUser, error) {
	if os.Geteuid() != 0 {
		return pgUser{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return pgUser{}, fmt.Errorf("running as root and PostgreSQL refuses root, but user \"nobody\" to run it as is unknown: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return pgUser{}, fmt.Errorf("user nobody has non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	return pgUser{
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		uid:  uid,
		gid:  gid,
	}, nil
}

func (u pgUser) chown(path string) error {
	if u.cred == nil {
		return nil
	}
	return os.Chown(path, u.uid, u.gid)
}

// checkReachable fails if the unprivileged user cannot reach dir because a
// parent directory is closed to others (e.g. TMPDIR set to a 0700 directory).
func (u pgUser) checkReachable(dir string) error {
	if u.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("postgres: %s is closed to user nobody, who runs PostgreSQL as we are root: set TMPDIR to a directory everyone can enter, such as /tmp", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
