// Package esserver runs a real Elasticsearch for the local default and the
// tests: the minimal integration-test distribution
// (org.elasticsearch.distribution.integ-test-zip:elasticsearch, see
// [Version]), fetched once with Maven into a cache directory outside the
// repository and unpacked there.
//
// The distribution bundles no JDK ([Options.JavaHome], found under
// /usr/lib/jvm by default) and refuses to run as root: when the calling
// process is root, Elasticsearch runs as the unprivileged user
// [DefaultUser], created with useradd if missing. Every server has its own
// directory holding a writable copy of the distribution's config
// (ES_PATH_CONF), its data, logs and temp directory. It listens on
// loopback only, as a single node, with security disabled and a small
// heap.
//
// [Start] runs a server that dies with the calling process (parent-death
// signal), unless [Options.Detach] is set. [Shared] starts, or reuses, one
// detached server per cache directory: the one the tests, scripts/elasticsearch
// and orderd's ORDO_ELASTICSEARCH=local use. A state file records its URL
// and process, a lock keeps concurrent callers (go test -p 2) from starting
// two, and [StopShared] stops it.
package esserver
