package datadir

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// User is a user and group id: who a local server runs as, and who owns
// its files ([FileOptions.Owner]).
type User struct {
	Uid, Gid uint32
}

// Unprivileged returns who a local server that orderd starts runs as:
// nil (the calling user) unless the process runs as root; then the first
// of names that exists. A server must not run as root (PostgreSQL and
// Elasticsearch refuse to): a name whose uid is 0 is an error, and so is
// none existing, wrapping user.UnknownUserError.
func Unprivileged(names ...string) (*User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if len(names) == 0 {
		return nil, errors.New("running as root, and no unprivileged user is named")
	}
	var u *user.User
	var err error
	for _, name := range names {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("running as root, and no unprivileged user (%v): %w", names, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil, fmt.Errorf("user %s (uid %s) is not an unprivileged user", u.Username, u.Uid)
	}
	return &User{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
