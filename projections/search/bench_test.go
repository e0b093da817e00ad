package search

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/streams"
)

const (
	benchOrders     = 6000 // ~23k commits
	benchPartitions = 16
	benchBatch      = projections.DefaultBatchSize
)

func benchLog(b *testing.B) (*streams.Store, int) {
	b.Helper()
	ctx := context.Background()
	log, h := testkit.OrderLog(b, benchPartitions)
	if err := testkit.RunOrders(ctx, h, "ord", benchOrders, 97, 8); err != nil {
		b.Fatal(err)
	}
	last, err := log.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		b.Fatal(err)
	}
	return log, int(last)
}

func benchStore(b *testing.B, url, prefix string) *Store {
	b.Helper()
	c, err := NewClient(url)
	if err != nil {
		b.Fatal(err)
	}
	st, err := New(c, Options{Prefix: prefix, Partitions: benchPartitions})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureIndex(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st
}

// indexConcurrently writes docs in bulk requests of batch documents from
// workers goroutines: the raw baseline, shaped like the projection (one
// bulk request per partition batch, 16 partitions at once).
func indexConcurrently(ctx context.Context, st *Store, index string, docs []*Document, batch, workers int) error {
	chunks := make(chan []*Document, len(docs)/batch+1)
	for c := range slices.Chunk(docs, batch) {
		chunks <- c
	}
	close(chunks)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for c := range chunks {
				if _, err := st.index(ctx, index, c); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// BenchmarkIndexing compares, in every iteration against the same
// Elasticsearch, the projection catching up with a log of benchOrders
// orders (read the log, decode, fold, bulk at external versions,
// checkpoints) with raw bulk indexing of the same final documents (one
// per order, computed by the first iteration's projection before the
// timer) at the same concurrency (16) and batch size (500), each into a
// fresh index. It reports both rates and their ratio.
func BenchmarkIndexing(b *testing.B) {
	url, prefix := testkit.Elasticsearch(b)
	log, commits := benchLog(b)
	ctx := context.Background()
	var final []*Document
	var projTime, rawTime time.Duration
	cpus := newCPUMeter(b, url)
	var projCPU, rawCPU cpuUse
	var projES, rawES esStats
	n := 0
	for b.Loop() {
		n++
		st := benchStore(b, url, fmt.Sprintf("%sp%d-", prefix, n))
		r, err := projections.New(log, st.Sink(), nil, projections.Options{BatchSize: benchBatch})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		cpu := cpus.sample()
		if err := r.CatchUp(ctx, 0); err != nil {
			b.Fatal(err)
		}
		projTime += time.Since(start)
		projCPU.add(cpus.since(cpu))
		b.StopTimer()
		if final == nil {
			if err := st.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			all, err := st.All(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for i := range all {
				final = append(final, &all[i])
			}
			if len(final) != benchOrders {
				b.Fatalf("projection left %d documents, want %d", len(final), benchOrders)
			}
		}
		raw := benchStore(b, url, fmt.Sprintf("%sr%d-", prefix, n))
		index, err := raw.liveIndex(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start = time.Now()
		cpu = cpus.sample()
		if err := indexConcurrently(ctx, raw, index, final, benchBatch, benchPartitions); err != nil {
			b.Fatal(err)
		}
		rawTime += time.Since(start)
		rawCPU.add(cpus.since(cpu))
		b.StopTimer()
		ps, rs := indexStats(b, st, fmt.Sprintf("%sp%d-*", prefix, n)), indexStats(b, raw, index)
		projES.add(ps)
		rawES.add(rs)
		testkit.DeleteIndices(b, url, fmt.Sprintf("%sp%d-", prefix, n))
		testkit.DeleteIndices(b, url, fmt.Sprintf("%sr%d-", prefix, n))
		b.StartTimer()
	}
	proj := float64(benchOrders*n) / projTime.Seconds()
	raw := float64(benchOrders*n) / rawTime.Seconds()
	b.ReportMetric(float64(commits*n)/projTime.Seconds(), "proj-commits/s")
	b.ReportMetric(proj, "proj-orders/s")
	b.ReportMetric(raw, "raw-orders/s")
	b.ReportMetric(proj/raw, "ratio")
	// Where the CPU went, per iteration: this process (the projector or
	// the raw client, and the in-process nats-server) and the
	// Elasticsearch node, both on the same cores.
	b.ReportMetric(projCPU.self.Seconds()/float64(n), "proj-go-cpu-s")
	b.ReportMetric(rawCPU.self.Seconds()/float64(n), "raw-go-cpu-s")
	if cpus.esPid > 0 {
		b.ReportMetric(projCPU.es.Seconds()/float64(n), "proj-es-cpu-s")
		b.ReportMetric(rawCPU.es.Seconds()/float64(n), "raw-es-cpu-s")
	}
	// What Elasticsearch did, per order: document writes (index
	// operations, checkpoints included), writes it refused with 409,
	// real-time gets (mget items and checkpoint reads) and refreshes.
	per := float64(benchOrders * n)
	b.ReportMetric(float64(projES.Index)/per, "proj-writes/order")
	b.ReportMetric(float64(projES.Conflicts)/per, "proj-409s/order")
	b.ReportMetric(float64(projES.Gets)/per, "proj-gets/order")
	b.ReportMetric(float64(projES.Refreshes)/float64(n), "proj-refreshes/op")
	b.ReportMetric(float64(rawES.Index)/per, "raw-writes/order")
	b.ReportMetric(float64(rawES.Refreshes)/float64(n), "raw-refreshes/op")
}

// esStats are an index's indexing counters.
type esStats struct{ Index, Conflicts, Gets, Refreshes int64 }

func (s *esStats) add(o esStats) {
	s.Index += o.Index
	s.Conflicts += o.Conflicts
	s.Gets += o.Gets
	s.Refreshes += o.Refreshes
}

// indexStats reads the primaries' indexing, get and refresh counters of
// target.
func indexStats(b *testing.B, st *Store, target string) esStats {
	b.Helper()
	var out struct {
		All struct {
			Primaries struct {
				Indexing struct {
					IndexTotal  int64 `json:"index_total"`
					IndexFailed int64 `json:"index_failed"`
				} `json:"indexing"`
				Get struct {
					Total int64 `json:"total"`
				} `json:"get"`
				Refresh struct {
					Total         int64 `json:"total"`
					ExternalTotal int64 `json:"external_total"`
				} `json:"refresh"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	if err := st.do(context.Background(), "GET", "/"+target+"/_stats/indexing,get,refresh", nil, &out); err != nil {
		b.Fatal(err)
	}
	p := out.All.Primaries
	return esStats{Index: p.Indexing.IndexTotal, Conflicts: p.Indexing.IndexFailed, Gets: p.Get.Total, Refreshes: p.Refresh.Total}
}

var (
	benchSurnames = []rune("王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	benchGivens   = []rune("伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉玲建国斌宇浩凯健俊帆帅旭宁龙林欣佳")
	benchLatin    = []string{"Anna", "Lucas", "Maria", "John", "Yuki", "Olga", "Pierre", "Amara", "Diego", "Ingrid"}
	benchLast     = []string{"Schmidt", "Martin", "Garcia", "Smith", "Tanaka", "Ivanova", "Dubois", "Okafor", "Silva", "Berg"}
)

// synthDoc is a made-up order document i.
func synthDoc(r *rand.Rand, i int) *Document {
	name := string(benchSurnames[r.IntN(len(benchSurnames))]) + string(benchGivens[r.IntN(len(benchGivens))])
	if r.IntN(3) == 0 {
		name += string(benchGivens[r.IntN(len(benchGivens))])
	}
	if i%2 == 1 {
		name = benchLatin[r.IntN(len(benchLatin))] + " " + benchLast[r.IntN(len(benchLast))]
	}
	phone := fmt.Sprintf("+86 1%02d %04d %04d", 30+r.IntN(60), r.IntN(10000), r.IntN(10000))
	p := events.OrderPlaced{
		OrderID: fmt.Sprintf("ord_%08d%06x", i, r.IntN(1<<24)), CustomerID: fmt.Sprintf("cust-%d", r.IntN(i/3+1)),
		Customer: events.Customer{Name: name, Email: fmt.Sprintf("user%d.%d@example.com", i, r.IntN(100)), Phone: phone},
		Lines:    []events.OrderLine{{SKU: fmt.Sprintf("SKU-%04d", r.IntN(5000)), Qty: 1}},
		Total:    events.Money{Amount: int64(r.IntN(100000)), Currency: "CNY"},
	}
	if r.IntN(2) == 0 {
		p.Lines = append(p.Lines, events.OrderLine{SKU: fmt.Sprintf("SKU-%04d", r.IntN(5000)), Qty: 2})
	}
	d := newDocument(p, time.Unix(1_750_000_000+int64(i)*60, 0).UTC())
	d.Status = []string{"placed", "paid", "shipped", "delivered", "cancelled"}[r.IntN(5)]
	d.Version, d.Seq = 1, uint64(i+1)
	return d
}

// BenchmarkSearchLatency measures one search's latency, as an agent
// types it, over indices of 1,000 and 100,000 orders: a mix of email,
// phone, last four digits, Chinese name (whole and part), Latin name
// prefix, SKU and order-id-prefix lookups, one at a time.
func BenchmarkSearchLatency(b *testing.B) {
	url, prefix := testkit.Elasticsearch(b)
	ctx := context.Background()
	for _, size := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("orders=%d", size), func(b *testing.B) {
			st := benchStore(b, url, fmt.Sprintf("%sl%d-", prefix, size))
			index, err := st.liveIndex(ctx)
			if err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, uint64(size)))
			docs := make([]*Document, size)
			for i := range docs {
				docs[i] = synthDoc(r, i)
			}
			if err := indexConcurrently(ctx, st, index, docs, 1000, 4); err != nil {
				b.Fatal(err)
			}
			if err := st.do(ctx, "POST", "/"+index+"/_forcemerge?max_num_segments=1", nil, nil); err != nil {
				b.Fatal(err)
			}
			if err := st.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			queries := func(d *Document) []string {
				rs := []rune(d.Customer.Name)
				return []string{
					d.Email, d.Customer.Phone, d.PhoneDigits[len(d.PhoneDigits)-4:], d.Customer.Name,
					string(rs[:min(2, len(rs))]), d.SKUs[0], d.OrderID[:10], string(rs[:min(4, len(rs))]),
				}
			}
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				d := docs[r.IntN(size)]
				qs := queries(d)
				q := qs[i%len(qs)]
				start := time.Now()
				res, err := st.Search(ctx, Query{Text: q, Limit: 20})
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Hits) == 0 {
					b.Fatalf("q %q found nothing", q)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// cpuMeter reads the CPU time this process and the Elasticsearch node
// have used, from /proc (the node's only when it runs on this machine).
type cpuMeter struct{ esPid int }

type cpuUse struct{ self, es time.Duration }

func (u *cpuUse) add(o cpuUse) { u.self += o.self; u.es += o.es }

func newCPUMeter(b *testing.B, url string) cpuMeter {
	b.Helper()
	c, err := NewClient(url)
	if err != nil {
		b.Fatal(err)
	}
	st, err := New(c, Options{Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	var out struct {
		Nodes map[string]struct {
			Process struct {
				ID int `json:"id"`
			} `json:"process"`
		} `json:"nodes"`
	}
	if err := st.do(context.Background(), "GET", "/_nodes/_local/process", nil, &out); err != nil {
		b.Fatal(err)
	}
	for _, n := range out.Nodes {
		if _, err := procCPU(n.Process.ID); err == nil {
			return cpuMeter{esPid: n.Process.ID}
		}
	}
	return cpuMeter{}
}

func (m cpuMeter) sample() cpuUse {
	self, _ := procCPU(os.Getpid())
	var es time.Duration
	if m.esPid > 0 {
		es, _ = procCPU(m.esPid)
	}
	return cpuUse{self, es}
}

func (m cpuMeter) since(start cpuUse) cpuUse {
	now := m.sample()
	return cpuUse{now.self - start.self, now.es - start.es}
}

// procCPU returns a process's user and system CPU time so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: not a stat line", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}
