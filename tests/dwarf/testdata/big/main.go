// Command big links much of the standard library, to measure analysis time on a
// binary of realistic size (tens of megabytes).
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"compress/lzw"
	"compress/zlib"
	"crypto/aes"
	"crypto/des"
	"crypto/dsa"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/md5"
	"crypto/mlkem"
	"crypto/rc4"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"debug/macho"
	"debug/pe"
	"debug/plan9obj"
	"encoding/ascii85"
	"encoding/asn1"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"expvar"
	"fmt"
	"go/ast"
	"go/build"
	"go/build/constraint"
	"go/constant"
	"go/doc"
	"go/doc/comment"
	"go/format"
	"go/importer"
	"go/parser"
	"go/printer"
	"go/scanner"
	"go/token"
	"go/types"
	"go/version"
	"hash/crc64"
	"hash/fnv"
	"html"
	"html/template"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"index/suffixarray"
	"log/slog"
	"log/syslog"
	"math/big"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/cgi"
	"net/http/cookiejar"
	"net/http/fcgi"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/http/pprof"
	"net/mail"
	"net/netip"
	"net/rpc"
	"net/rpc/jsonrpc"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"regexp"
	"runtime/trace"
	"sort"
	"strconv"
	"testing"
	"testing/fstest"
	"testing/quick"
	scanner2 "text/scanner"
	"text/tabwriter"
	texttemplate "text/template"
	"unicode/utf16"
)

var sink []any

func main() {
	sink = append(sink,
		tar.NewReader, zip.NewReader, bzip2.NewReader, flate.NewReader, gzip.NewReader,
		lzw.NewReader, zlib.NewReader, aes.NewCipher, ecdh.P256, ecdsa.GenerateKey,
		ed25519.GenerateKey, hmac.New, md5.New, rsa.GenerateKey, sha1.New, sha256.New,
		sha512.New, tls.Dial, x509.ParseCertificate, sql.Open, dwarf.New, elf.Open,
		gosym.NewTable, macho.Open, pe.Open, ascii85.NewEncoder, asn1.Marshal,
		base32.NewEncoder, base64.NewEncoder, csv.NewReader, gob.NewEncoder, hex.Dump,
		json.Marshal, pem.Decode, xml.Marshal, expvar.NewInt, fmt.Sprintf, ast.Print,
		build.Import, doc.New, format.Source, importer.Default, parser.ParseFile,
		printer.Fprint, token.NewFileSet, types.NewPackage, template.New, gif.Decode,
		jpeg.Decode, png.Decode, slog.New, big.NewInt, multipart.NewReader,
		http.ListenAndServe, httptest.NewServer, httputil.DumpRequest, pprof.Index,
		mail.ParseAddress, rpc.NewServer, jsonrpc.NewClient, smtp.Dial, regexp.Compile,
		os.Open, texttemplate.New,
		des.NewCipher, rc4.NewCipher, dsa.GenerateKey, buildinfo.ReadFile, plan9obj.Open, constant.MakeBool, scanner.PrintError, constraint.Parse, crc64.New, fnv.New32, suffixarray.New, cgi.Serve, fcgi.Serve, cookiejar.New, netip.ParseAddr, textproto.NewReader, draw.Draw, tabwriter.NewWriter, new(scanner2.Scanner).Init, trace.Start, testing.Main, fstest.TestFS, quick.Check, new(comment.Parser).Parse, syslog.New, httptrace.WithClientTrace, mime.TypeByExtension, binary.Write, html.EscapeString, url.Parse, sort.Ints, strconv.Quote, utf16.Encode, version.Compare, sha3.New256, mlkem.GenerateKey768,
	)
	for _, w := range works {
		sink = append(sink, w.Work(1))
	}
	for _, f := range sink {
		fmt.Printf("%T\n", f)
	}
	_ = template.Must(template.New("x").Parse("{{.}}")).Execute(os.Stdout, len(sink))
}
