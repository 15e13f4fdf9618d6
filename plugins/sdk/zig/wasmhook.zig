//! Write wasmhook plugins in Zig.
//!
//! A plugin is one Zig file with a `transform` function and a top-level
//! `comptime { wasmhook.exportPlugin(transform); }`. Built for wasm32-wasi
//! by `scripts/plugins/zig.sh` and componentized by `wasmhook-toolchain`, it
//! is a component of the `wasmhook:plugin/transformer` world
//! (wit/wasmhook.wit). The plugin never sends anything itself: it returns a
//! `Decision`, a skip with a reason or a list of `Request`s that the host
//! checks against the egress policy, fills secrets into, sends and retries.
//!
//! ```zig
//! const std = @import("std");
//! const wasmhook = @import("wasmhook");
//!
//! comptime {
//!     wasmhook.exportPlugin(transform);
//! }
//!
//! pub fn transform(cx: *wasmhook.Context, event: wasmhook.Event) wasmhook.Error!wasmhook.Decision {
//!     if (!std.mem.eql(u8, event.name, "user.signed_up")) return cx.skip("not a signup", .{});
//!     const url = try wasmhook.config.get(cx.arena, "url") orelse return cx.fail("config url is required", .{});
//!     return cx.fireOne(.{ .method = .post, .url = url, .body = event.properties });
//! }
//! ```
//!
//! Layout:
//! - plugin-facing types: `Event`, `Request`, `Header`, `Method`, `Decision`,
//!   and `Context` (the per-invocation arena, `skip`/`fail`/`print`/`log`);
//! - helpers for building requests: `JsonObject`, `appendJsonString`,
//!   `appendPathSegment`, `bearerSecret`, `eventJson`;
//! - the host's imports `config`, `kv` and `log`: on wasm32 they call the
//!   host through the C bindings that `wasmhook-toolchain bindgen-c`
//!   generates (translated to Zig with `zig translate-c`, imported as the
//!   module `transformer`); on every other target they use the in-memory
//!   double in `testing`, so plugin logic is unit-tested natively with
//!   `zig test`;
//! - `exportPlugin`: the C-ABI export `exports_transformer_transform` that
//!   the generated `transformer.c` calls, and the conversion between the
//!   bindings' C structs and these types.
//!
//! Memory: every invocation gets a fresh arena (`Context.arena`, backed by
//! libc's malloc on wasm32) that is freed when `transform` returns, after
//! the decision has been copied into the malloc'd C structs the generated
//! `cabi_post_transform` frees. Plugins allocate freely from the arena and
//! never free anything themselves.

const std = @import("std");
const builtin = @import("builtin");

/// True when compiling the plugin component; false for native unit tests.
pub const is_wasm = builtin.target.cpu.arch == .wasm32;

/// The HTTP method of an outbound request (WIT `method`).
pub const Method = enum(u8) { get, post, put, patch, delete };

/// One request header. Values may hold `{{secret:NAME}}` placeholders.
pub const Header = struct {
    name: []const u8,
    value: []const u8,
};

/// One outbound HTTP request the plugin wants the host to send (WIT
/// `request`). The URL must be absolute http(s); the URL, header values and
/// a UTF-8 body may hold `{{secret:NAME}}` placeholders.
pub const Request = struct {
    method: Method,
    url: []const u8,
    headers: []const Header = &.{},
    body: []const u8 = "",
};

/// What the plugin decided to do with an event (WIT `decision`).
pub const Decision = union(enum) {
    /// Do nothing; the reason is recorded in the delivery log.
    skip: []const u8,
    /// Send these requests, each delivered and retried independently.
    fire: []const Request,
};

/// One event (WIT `event`). Slices are valid for the invocation only.
pub const Event = struct {
    /// The sender's idempotency key, stable across retries of the event.
    id: []const u8,
    /// The event name, e.g. "flight.booked".
    name: []const u8,
    /// The user the event is about, when the sender gave one.
    user_id: ?[]const u8 = null,
    /// When the event happened, in milliseconds since the Unix epoch.
    timestamp_ms: u64 = 0,
    /// The properties: a JSON object as text ("{}" when there are none).
    properties: []const u8 = "{}",
};

/// What `transform` may fail with. `error.PluginError` carries the message
/// given to `Context.fail`; any other error is reported by its name.
pub const Error = error{ PluginError, OutOfMemory };

/// Per-invocation state handed to `transform`.
pub const Context = struct {
    /// Allocator for everything the plugin builds during this invocation;
    /// all of it is freed at once after the decision was handed over.
    arena: std.mem.Allocator,
    /// Set by `fail`: the message of the `err` result.
    err_message: ?[]const u8 = null,

    /// Formats into the arena.
    pub fn print(cx: *Context, comptime fmt: []const u8, args: anytype) Error![]u8 {
        return std.fmt.allocPrint(cx.arena, fmt, args);
    }

    /// A skip decision with a formatted reason.
    pub fn skip(cx: *Context, comptime fmt: []const u8, args: anytype) Error!Decision {
        return .{ .skip = try cx.print(fmt, args) };
    }

    /// A fire decision with exactly one request (copied into the arena).
    pub fn fireOne(cx: *Context, request: Request) Error!Decision {
        const requests = try cx.arena.alloc(Request, 1);
        requests[0] = request;
        return .{ .fire = requests };
    }

    /// Records `err(message)` as the result: `return cx.fail("...", .{});`.
    /// Use it for what the plugin cannot handle (bad configuration,
    /// malformed properties); nothing is sent.
    pub fn fail(cx: *Context, comptime fmt: []const u8, args: anytype) Error {
        cx.err_message = std.fmt.allocPrint(cx.arena, fmt, args) catch "out of memory";
        return error.PluginError;
    }

    /// Writes one formatted line to the host's log.
    pub fn log(cx: *Context, level: LogLevel, comptime fmt: []const u8, args: anytype) void {
        const message = std.fmt.allocPrint(cx.arena, fmt, args) catch return;
        host.log(level, message);
    }

    /// The event's properties as a parsed JSON object; fails (with an
    /// `err` result) when they are not a JSON object.
    pub fn properties(cx: *Context, event: Event) Error!std.json.ObjectMap {
        const value = std.json.parseFromSliceLeaky(std.json.Value, cx.arena, event.properties, .{}) catch |e| switch (e) {
            error.OutOfMemory => return error.OutOfMemory,
            else => return cx.fail("event properties are not valid JSON", .{}),
        };
        return switch (value) {
            .object => |object| object,
            else => cx.fail("event properties are not a JSON object", .{}),
        };
    }
};

/// Severity of a log line (WIT `log.level`).
pub const LogLevel = enum(u8) { trace, debug, info, warn, err };

/// The plugin's settings (`[plugins.config]`); secrets are never readable.
pub const config = struct {
    /// The setting `key`, trimmed of surrounding whitespace and copied into
    /// `gpa`; null when unset or blank.
    pub fn get(gpa: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
        const raw = try host.configGet(gpa, key) orelse return null;
        const value = std.mem.trim(u8, raw, " \t\r\n");
        return if (value.len == 0) null else value;
    }

    /// The setting `key` as a decimal integer, `default` when unset; an
    /// `err` result ("config KEY must be an integer") when it is not one.
    pub fn int(cx: *Context, key: []const u8, default: i64) Error!i64 {
        const text = try get(cx.arena, key) orelse return default;
        return std.fmt.parseInt(i64, text, 10) catch
            cx.fail("config {s} must be an integer (got \"{s}\")", .{ key, text });
    }
};

/// The plugin's private key-value store, persisted by the host.
///
/// A counter made by `increment` is an ordinary value: 8 bytes, the counter
/// as a little-endian two's-complement i64, in the same key space as `get`
/// and `set`. `get` returns those 8 bytes, not decimal text: read a counter
/// with `getCounter` or `counterValue`, never with `std.fmt.parseInt`.
pub const kv = struct {
    /// The value under `key` copied into `gpa`, or null when absent.
    pub fn get(gpa: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
        return host.kvGet(gpa, key);
    }

    /// Stores `value` under `key`.
    pub fn set(key: []const u8, value: []const u8) void {
        host.kvSet(key, value);
    }

    /// Removes `key` (absent keys are fine).
    pub fn delete(key: []const u8) void {
        host.kvDelete(key);
    }

    /// Atomically adds `delta` to the counter under `key` (absent = 0) and
    /// returns the new value, stored as 8 little-endian bytes. A value that
    /// is not 8 bytes long counts as 0 (and is overwritten); the addition
    /// wraps on overflow. Every call writes, so it counts against the
    /// host's per-invocation caps even when `delta` is 0.
    pub fn increment(key: []const u8, delta: i64) i64 {
        return host.kvIncrement(key, delta);
    }

    /// The counter a stored value holds, as `increment` reads it: 8 bytes
    /// as a little-endian i64, or 0 for a value of any other length or none.
    pub fn counterValue(value: ?[]const u8) i64 {
        const bytes = value orelse return 0;
        if (bytes.len != 8) return 0;
        return std.mem.readInt(i64, bytes[0..8], .little);
    }

    /// The counter under `key` (0 when absent or not a counter), read
    /// without writing anything.
    pub fn getCounter(gpa: std.mem.Allocator, key: []const u8) Error!i64 {
        return counterValue(try get(gpa, key));
    }
};

/// Writes `message` to the host's log (see also `Context.log`).
pub fn log(level: LogLevel, message: []const u8) void {
    host.log(level, message);
}

// ---------------------------------------------------------------------------
// Request-building helpers.

/// `Bearer {{secret:NAME}}`, for an `authorization` header the host fills.
/// A name that is not `[A-Za-z0-9_]+` is a compile error (see `secret`).
pub fn bearerSecret(gpa: std.mem.Allocator, comptime name: []const u8) Error![]const u8 {
    return gpa.dupe(u8, "Bearer " ++ comptime secret(name));
}

/// The placeholder `{{secret:NAME}}`, which the host replaces with the
/// secret's value at send time (in the URL, a header value or a UTF-8
/// body). A name that is not `[A-Za-z0-9_]+` is a compile error: the host
/// would refuse the placeholder as malformed.
pub fn secret(comptime name: []const u8) []const u8 {
    if (comptime !isSecretName(name)) @compileError("secret name \"" ++ name ++ "\" is invalid: use letters, digits and _ only");
    return "{{secret:" ++ name ++ "}}";
}

/// Whether `name` is a valid secret name: `[A-Za-z0-9_]+`.
pub fn isSecretName(name: []const u8) bool {
    if (name.len == 0) return false;
    for (name) |ch| if (!(std.ascii.isAlphanumeric(ch) or ch == '_')) return false;
    return true;
}

/// Appends `s` as a quoted JSON string ("\"", "\\" and control characters
/// escaped; other bytes, UTF-8 included, as they are).
pub fn appendJsonString(out: *std.ArrayList(u8), gpa: std.mem.Allocator, s: []const u8) Error!void {
    const hex = "0123456789abcdef";
    try out.append(gpa, '"');
    for (s) |ch| switch (ch) {
        '"', '\\' => try out.appendSlice(gpa, &.{ '\\', ch }),
        '\n' => try out.appendSlice(gpa, "\\n"),
        '\r' => try out.appendSlice(gpa, "\\r"),
        '\t' => try out.appendSlice(gpa, "\\t"),
        0...8, 11, 12, 14...0x1f => try out.appendSlice(gpa, &.{ '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] }),
        else => try out.append(gpa, ch),
    };
    try out.append(gpa, '"');
}

/// What `appendPathSegment` fails with.
pub const PathSegmentError = error{
    /// The segment is empty, "." or "..": the host's URL parser would drop
    /// it or step up one level, so it cannot name one resource.
    InvalidPathSegment,
    OutOfMemory,
};

/// Appends `s` percent-encoded as one URL path segment: only unreserved
/// characters (RFC 3986) stay as they are, so "/", "?" or "#" in a user id
/// cannot change which resource the URL names. Refuses (appending nothing)
/// a segment that is empty, "." or "..": the host's URL parser removes dot
/// segments (`{base}/customers/../discounts` is `{base}/discounts`), and
/// percent-encoding does not help since "%2e%2e" is a dot segment too.
/// Skip the event (or fail) on `error.InvalidPathSegment`.
pub fn appendPathSegment(out: *std.ArrayList(u8), gpa: std.mem.Allocator, s: []const u8) PathSegmentError!void {
    if (!isPathSegment(s)) return error.InvalidPathSegment;
    const hex = "0123456789ABCDEF";
    for (s) |ch| switch (ch) {
        'a'...'z', 'A'...'Z', '0'...'9', '-', '.', '_', '~' => try out.append(gpa, ch),
        else => try out.appendSlice(gpa, &.{ '%', hex[ch >> 4], hex[ch & 15] }),
    };
}

/// Whether `appendPathSegment` accepts `s`: not empty, ".", or "..".
pub fn isPathSegment(s: []const u8) bool {
    return !(s.len == 0 or std.mem.eql(u8, s, ".") or std.mem.eql(u8, s, ".."));
}

/// A JSON object built field by field:
/// `var o = JsonObject.init(gpa); try o.int("percent", 10); const body = try o.finish();`
pub const JsonObject = struct {
    gpa: std.mem.Allocator,
    buf: std.ArrayList(u8) = .empty,
    fields: usize = 0,

    pub fn init(gpa: std.mem.Allocator) JsonObject {
        return .{ .gpa = gpa };
    }

    fn key(o: *JsonObject, name: []const u8) Error!void {
        try o.buf.append(o.gpa, if (o.fields == 0) '{' else ',');
        o.fields += 1;
        try appendJsonString(&o.buf, o.gpa, name);
        try o.buf.append(o.gpa, ':');
    }

    /// Adds `"name": "value"` (value escaped).
    pub fn string(o: *JsonObject, name: []const u8, value: []const u8) Error!void {
        try o.key(name);
        try appendJsonString(&o.buf, o.gpa, value);
    }

    /// Adds `"name": value` for an integer.
    pub fn int(o: *JsonObject, name: []const u8, value: i64) Error!void {
        try o.key(name);
        try o.buf.print(o.gpa, "{d}", .{value});
    }

    /// Adds `"name": value` for a boolean.
    pub fn boolean(o: *JsonObject, name: []const u8, value: bool) Error!void {
        try o.key(name);
        try o.buf.appendSlice(o.gpa, if (value) "true" else "false");
    }

    /// Adds `"name": json` where `json` is already valid JSON text.
    pub fn raw(o: *JsonObject, name: []const u8, json: []const u8) Error!void {
        try o.key(name);
        try o.buf.appendSlice(o.gpa, json);
    }

    /// The finished object's text.
    pub fn finish(o: *JsonObject) Error![]const u8 {
        if (o.fields == 0) try o.buf.append(o.gpa, '{');
        try o.buf.append(o.gpa, '}');
        return o.buf.toOwnedSlice(o.gpa);
    }
};

/// The whole event as one JSON object:
/// `{"id":..,"name":..,"user_id":..|null,"timestamp_ms":..,"properties":{..}}`.
pub fn eventJson(gpa: std.mem.Allocator, event: Event) Error![]const u8 {
    var o = JsonObject.init(gpa);
    try o.string("id", event.id);
    try o.string("name", event.name);
    if (event.user_id) |user| try o.string("user_id", user) else try o.raw("user_id", "null");
    try o.key("timestamp_ms");
    try o.buf.print(gpa, "{d}", .{event.timestamp_ms});
    // The host guarantees a valid JSON object; keep the result valid anyway.
    try o.raw("properties", if (event.properties.len == 0) "{}" else event.properties);
    return o.finish();
}

/// At most `max` bytes of `s`, cut on a UTF-8 character boundary, for
/// quoting untrusted text (event names) in reasons and log lines.
pub fn truncate(s: []const u8, max: usize) []const u8 {
    if (s.len <= max) return s;
    var n = max;
    while (n > 0 and (s[n] & 0xC0) == 0x80) n -= 1;
    return s[0..n];
}

// ---------------------------------------------------------------------------
// The host's checks on what a plugin returns (host/src/runtime/output.rs and
// the egress policy), with the host's default limits, so that a unit test
// fails where the host would refuse. `testing.run` applies them. Not
// checked, because they depend on the operator's configuration:
// allowed_hosts, allowed_methods, the private-network block, and whether a
// named secret exists. Non-ASCII host names are accepted as the host's IDNA
// mapping would accept them, without applying it.

/// Most requests one decision may hold (the default `max_requests`).
pub const max_requests: usize = 16;
/// Largest request body, in bytes (the default `max_body_bytes`).
pub const max_body_bytes: usize = 1024 * 1024;
/// Longest URL, in bytes.
pub const max_url_bytes: usize = 8 * 1024;
/// Most headers on one request (the default `max_headers`).
pub const max_headers: usize = 64;
/// Most bytes of header names and values on one request.
pub const max_header_bytes: usize = 64 * 1024;
/// Longest skip reason or error message the host keeps, in bytes.
pub const max_reason_bytes: usize = 4 * 1024;

/// Headers a plugin may not set (compared case-insensitively): hop-by-hop
/// and framing headers, and the signing headers the host adds itself.
pub const forbidden_headers = [_][]const u8{
    "host",              "content-length",     "transfer-encoding", "connection",
    "keep-alive",        "proxy-authorization", "proxy-authenticate", "proxy-connection",
    "te",                "trailer",            "upgrade",           "expect",
    "http2-settings",    "webhook-id",         "webhook-timestamp", "webhook-signature",
};

const placeholder_open = "{{secret:";

/// Why the host would not accept a decision.
pub const Rejection = struct {
    /// The error kind the host records.
    kind: enum { invalid_output, refused },
    message: []const u8,
};

/// At most `max` bytes of `s` cut on a character boundary, with the host's
/// mark "… (N bytes truncated)" when cut.
pub fn truncateMarked(gpa: std.mem.Allocator, s: []const u8, max: usize) std.mem.Allocator.Error![]const u8 {
    if (s.len <= max) return s;
    const kept = truncate(s, max);
    return std.fmt.allocPrint(gpa, "{s}\u{2026} ({d} bytes truncated)", .{ kept, s.len - kept.len });
}

/// Every `{{secret:` must open `{{secret:NAME}}`: the problem, or null.
fn placeholderProblem(s: []const u8) ?[]const u8 {
    var rest = s;
    while (std.mem.indexOf(u8, rest, placeholder_open)) |at| {
        const after = rest[at + placeholder_open.len ..];
        var n: usize = 0;
        while (n < after.len and (std.ascii.isAlphanumeric(after[n]) or after[n] == '_')) n += 1;
        if (n == 0 or !std.mem.startsWith(u8, after[n..], "}}"))
            return "malformed secret placeholder: expected {{secret:NAME}} with NAME of letters, digits and _";
        rest = after[n + 2 ..];
    }
    return null;
}

/// Whether UTF-8 `s` holds a control character (C0, DEL, C1) or Unicode
/// white space, as Rust's `char::is_control`/`is_whitespace` see them.
fn hasSpaceOrControl(s: []const u8) bool {
    var i: usize = 0;
    while (i < s.len) : (i += 1) {
        const b = s[i];
        if (b <= 0x20 or b == 0x7f) return true;
        const rest = s[i..];
        if (b == 0xc2 and rest.len > 1 and (rest[1] <= 0xa0)) return true; // U+0080..U+00A0
        if (std.mem.startsWith(u8, rest, "\xe1\x9a\x80")) return true; // U+1680
        if (b == 0xe2 and rest.len > 2 and rest[1] == 0x80 and (rest[2] <= 0x8a or rest[2] == 0xa8 or rest[2] == 0xa9 or rest[2] == 0xaf)) return true;
        if (std.mem.startsWith(u8, rest, "\xe2\x81\x9f")) return true; // U+205F
        if (std.mem.startsWith(u8, rest, "\xe3\x80\x80")) return true; // U+3000
    }
    return false;
}

fn isTchar(ch: u8) bool {
    return std.ascii.isAlphanumeric(ch) or std.mem.indexOfScalar(u8, "!#$%&'*+-.^_`|~", ch) != null;
}

fn isRegNameChar(ch: u8) bool {
    return std.ascii.isAlphanumeric(ch) or std.mem.indexOfScalar(u8, "-._~!$&'()*+,;=", ch) != null;
}

fn allIn(s: []const u8, comptime pred: fn (u8) bool) bool {
    for (s) |ch| if (!pred(ch)) return false;
    return true;
}

fn isOctal(ch: u8) bool {
    return ch >= '0' and ch <= '7';
}

/// The URL standard's "ends in a number".
fn endsInNumber(label: []const u8) bool {
    if (label.len > 0 and allIn(label, std.ascii.isDigit)) return true;
    return std.mem.startsWith(u8, label, "0x") and allIn(label[2..], std.ascii.isHex);
}

/// The URL standard's IPv4 parser: up to 4 parts, decimal, 0x hex or 0
/// octal; all but the last at most 255, the last filling the rest.
fn isIpv4(address: []const u8) bool {
    var text = address;
    if (text.len > 1 and text[text.len - 1] == '.') text = text[0 .. text.len - 1];
    var numbers: [4]u64 = undefined;
    var n: usize = 0;
    var parts = std.mem.splitScalar(u8, text, '.');
    while (parts.next()) |part| {
        if (n == 4) return false;
        var digits = part;
        var base: u8 = 10;
        if (std.mem.startsWith(u8, part, "0x")) {
            digits = part[2..];
            base = 16;
            if (!allIn(digits, std.ascii.isHex)) return false;
        } else if (part.len > 1 and part[0] == '0') {
            digits = part[1..];
            base = 8;
            if (!allIn(digits, isOctal)) return false;
        } else if (part.len == 0 or !allIn(part, std.ascii.isDigit)) {
            return false;
        }
        numbers[n] = if (digits.len == 0) 0 else std.fmt.parseInt(u64, digits, base) catch return false;
        n += 1;
    }
    for (numbers[0 .. n - 1]) |x| if (x > 255) return false;
    const limit = std.math.pow(u64, 256, 5 - n);
    return numbers[n - 1] < limit;
}

/// An IPv6 address as the URL standard's parser accepts it (no zone id).
fn isIpv6(text: []const u8) bool {
    var groups: usize = 0;
    var compressed = false;
    var rest = text;
    if (std.mem.startsWith(u8, rest, "::")) {
        compressed = true;
        rest = rest[2..];
        if (rest.len == 0) return true;
    } else if (rest.len > 0 and rest[0] == ':') return false;
    while (true) {
        const end = std.mem.indexOfScalar(u8, rest, ':') orelse rest.len;
        const piece = rest[0..end];
        if (std.mem.indexOfScalar(u8, piece, '.') != null) {
            // An embedded IPv4 address: the last piece, 4 decimal parts.
            if (end != rest.len or groups > 6) return false;
            var parts = std.mem.splitScalar(u8, piece, '.');
            var count: usize = 0;
            while (parts.next()) |p| {
                if (p.len == 0 or p.len > 3 or !allIn(p, std.ascii.isDigit) or (p.len > 1 and p[0] == '0')) return false;
                if ((std.fmt.parseInt(u16, p, 10) catch return false) > 255) return false;
                count += 1;
            }
            if (count != 4) return false;
            groups += 2;
            break;
        }
        if (piece.len == 0 or piece.len > 4 or !allIn(piece, std.ascii.isHex)) return false;
        groups += 1;
        if (end == rest.len) break;
        rest = rest[end + 1 ..];
        if (rest.len > 0 and rest[0] == ':') {
            if (compressed) return false;
            compressed = true;
            rest = rest[1..];
            if (rest.len == 0) break;
        } else if (rest.len == 0) return false;
    }
    return if (compressed) groups <= 7 else groups == 8;
}

/// A domain (or IPv4 address) as the URL standard parses it, restricted to
/// what the host's HTTP client accepts: the problem, or null.
fn domainProblem(gpa: std.mem.Allocator, raw: []const u8) std.mem.Allocator.Error!?[]const u8 {
    var decoded = try gpa.alloc(u8, raw.len);
    var n: usize = 0;
    var i: usize = 0;
    while (i < raw.len) {
        if (raw[i] == '%' and i + 2 < raw.len and std.ascii.isHex(raw[i + 1]) and std.ascii.isHex(raw[i + 2])) {
            decoded[n] = std.fmt.parseInt(u8, raw[i + 1 .. i + 3], 16) catch unreachable;
            i += 3;
        } else {
            decoded[n] = raw[i];
            i += 1;
        }
        n += 1;
    }
    const name = decoded[0..n];
    if (!std.unicode.utf8ValidateSlice(name)) return "the host is not valid UTF-8 once percent-decoded";
    for (name) |*ch| {
        ch.* = std.ascii.toLower(ch.*);
        if (ch.* < 0x80 and !isRegNameChar(ch.*))
            return try std.fmt.allocPrint(gpa, "the host has a character an HTTP client refuses ({f})", .{std.zig.fmtString(&.{ch.*})});
    }
    if (hasSpaceOrControl(name)) return "the host has whitespace or control characters";
    var last: []const u8 = name;
    var labels = std.mem.splitBackwardsScalar(u8, name, '.');
    if (labels.next()) |l| {
        last = l;
        if (l.len == 0) {
            if (labels.next()) |before| last = before;
        }
    }
    if (endsInNumber(last) and !isIpv4(name)) return "the host is not a valid IPv4 address";
    return null;
}

/// Why the host (or its egress policy) refuses `url`, or null: more than
/// 8 KiB; whitespace, a control character or a backslash; a malformed
/// placeholder, or one in the scheme, host or port; not an absolute http or
/// https URL with a host; `user:pass@`; an IPv6 zone id; a port over 65535;
/// a host of characters an HTTP client refuses; a numeric host that is not
/// a valid IPv4 address.
pub fn validateUrl(gpa: std.mem.Allocator, url: []const u8) std.mem.Allocator.Error!?[]const u8 {
    if (url.len > max_url_bytes)
        return try std.fmt.allocPrint(gpa, "URL of {d} bytes exceeds the {d}-byte limit", .{ url.len, max_url_bytes });
    if (!std.unicode.utf8ValidateSlice(url)) return "URL is not valid UTF-8";
    if (hasSpaceOrControl(url)) return "URL contains whitespace or control characters";
    if (std.mem.indexOfScalar(u8, url, '\\') != null) return "URL contains a backslash (refused by the egress policy)";
    if (placeholderProblem(url)) |p| return try std.fmt.allocPrint(gpa, "URL: {s}", .{p});
    const shown = truncate(url, 256);
    const colon = std.mem.indexOfScalar(u8, url, ':') orelse
        return try std.fmt.allocPrint(gpa, "URL \"{s}\" is not an absolute URL", .{shown});
    const scheme = url[0..colon];
    if (scheme.len == 0 or !std.ascii.isAlphabetic(scheme[0]) or !allIn(scheme, isSchemeChar))
        return try std.fmt.allocPrint(gpa, "URL \"{s}\" is not an absolute URL", .{shown});
    if (!std.ascii.eqlIgnoreCase(scheme, "http") and !std.ascii.eqlIgnoreCase(scheme, "https"))
        return try std.fmt.allocPrint(gpa, "URL scheme \"{s}\" is not allowed; use http or https", .{try std.ascii.allocLowerString(gpa, scheme)});
    var rest = url[colon + 1 ..];
    while (rest.len > 0 and rest[0] == '/') rest = rest[1..];
    const authority = rest[0 .. std.mem.indexOfAny(u8, rest, "/?#") orelse rest.len];
    if (std.mem.indexOf(u8, authority, "{{") != null) return "secret placeholders are not allowed in the URL's scheme, host or port";
    if (std.mem.indexOfScalar(u8, authority, '@') != null)
        return "URL holds credentials (user:pass@), refused by the egress policy; send them in a header";
    var host_part = authority;
    var port: ?[]const u8 = null;
    if (std.mem.startsWith(u8, authority, "[")) {
        const close = std.mem.indexOfScalar(u8, authority, ']') orelse return "URL has an unclosed IPv6 address";
        host_part = authority[0 .. close + 1];
        const after = authority[close + 1 ..];
        if (after.len > 0) {
            if (after[0] != ':') return "URL has text after its IPv6 address";
            port = after[1..];
        }
    } else if (std.mem.indexOfScalar(u8, authority, ':')) |at| {
        host_part = authority[0..at];
        port = authority[at + 1 ..];
    }
    if (port) |p| if (p.len > 0) {
        const ok = allIn(p, std.ascii.isDigit) and (std.fmt.parseInt(u64, p, 10) catch std.math.maxInt(u64)) <= 65535;
        if (!ok) return try std.fmt.allocPrint(gpa, "URL \"{s}\" has an invalid port", .{shown});
    };
    if (host_part.len == 0) return try std.fmt.allocPrint(gpa, "URL \"{s}\" has no host", .{shown});
    if (host_part[0] == '[') {
        const inner = host_part[1 .. host_part.len - 1];
        if (std.mem.indexOfScalar(u8, inner, '%') != null) return "URL has an IPv6 zone id, refused by the egress policy";
        if (!isIpv6(inner)) return try std.fmt.allocPrint(gpa, "URL \"{s}\" has an invalid IPv6 address", .{shown});
        return null;
    }
    if (try domainProblem(gpa, host_part)) |p| return try std.fmt.allocPrint(gpa, "URL \"{s}\": {s}", .{ shown, p });
    return null;
}

fn isSchemeChar(ch: u8) bool {
    return std.ascii.isAlphanumeric(ch) or ch == '+' or ch == '-' or ch == '.';
}

/// Why the host refuses `request`, or null: the URL (`validateUrl`); more
/// than 64 headers or 64 KiB of them (names and values); a header name that
/// is not an HTTP token or is in `forbidden_headers` (Host, Content-Length,
/// Transfer-Encoding, Connection, Expect, webhook-*, ...); a value with a
/// control character (TAB allowed); a body over 1 MiB; a malformed
/// placeholder in a header value or a UTF-8 body. Messages are allocated
/// in `gpa`.
pub fn validate(gpa: std.mem.Allocator, request: Request) std.mem.Allocator.Error!?[]const u8 {
    if (try validateUrl(gpa, request.url)) |p| return p;
    if (request.headers.len > max_headers)
        return try std.fmt.allocPrint(gpa, "{d} headers; at most {d} are allowed", .{ request.headers.len, max_headers });
    var size: usize = 0;
    for (request.headers) |h| size += h.name.len + h.value.len;
    if (size > max_header_bytes)
        return try std.fmt.allocPrint(gpa, "headers of {d} bytes exceed the {d}-byte limit (names and values)", .{ size, max_header_bytes });
    for (request.headers) |h| {
        const shown = truncate(h.name, 64);
        if (h.name.len == 0 or h.name.len >= 1 << 16 or !allIn(h.name, isTchar))
            return try std.fmt.allocPrint(gpa, "invalid header name \"{f}\"", .{std.zig.fmtString(shown)});
        for (forbidden_headers) |f| if (std.ascii.eqlIgnoreCase(h.name, f))
            return try std.fmt.allocPrint(gpa, "header \"{s}\" is set by the host (hop-by-hop, framing or signing header); remove it from the request", .{f});
        if (!std.unicode.utf8ValidateSlice(h.value))
            return try std.fmt.allocPrint(gpa, "value of header \"{s}\" is not valid UTF-8", .{shown});
        for (h.value) |b| if ((b < 0x20 and b != '\t') or b == 0x7f)
            return try std.fmt.allocPrint(gpa, "invalid value for header \"{s}\" (control characters such as CR/LF are not allowed)", .{shown});
        if (placeholderProblem(h.value)) |p| return try std.fmt.allocPrint(gpa, "header \"{s}\": {s}", .{ shown, p });
    }
    if (request.body.len > max_body_bytes)
        return try std.fmt.allocPrint(gpa, "body of {d} bytes exceeds the {d}-byte limit (max_body_bytes)", .{ request.body.len, max_body_bytes });
    if (std.unicode.utf8ValidateSlice(request.body)) {
        if (placeholderProblem(request.body)) |p| return try std.fmt.allocPrint(gpa, "body: {s}", .{p});
    }
    return null;
}

fn jsonHoldsPlaceholder(value: std.json.Value) bool {
    switch (value) {
        .string => |s| return std.mem.indexOf(u8, s, placeholder_open) != null,
        .array => |a| {
            for (a.items) |item| if (jsonHoldsPlaceholder(item)) return true;
            return false;
        },
        .object => |o| {
            var it = o.iterator();
            while (it.next()) |entry| {
                if (std.mem.indexOf(u8, entry.key_ptr.*, placeholder_open) != null) return true;
                if (jsonHoldsPlaceholder(entry.value_ptr.*)) return true;
            }
            return false;
        },
        else => return false,
    }
}

/// Whether the event's own data (id, name, user id, any key or value of its
/// properties) holds `{{secret:`, as the host decides it (on the properties
/// as parsed, so `\u007b` escapes count).
pub fn eventHoldsPlaceholder(gpa: std.mem.Allocator, event: Event) std.mem.Allocator.Error!bool {
    for ([_][]const u8{ event.id, event.name, event.user_id orelse "" }) |text| {
        if (std.mem.indexOf(u8, text, placeholder_open) != null) return true;
    }
    const value = std.json.parseFromSliceLeaky(std.json.Value, gpa, event.properties, .{}) catch |e| switch (e) {
        error.OutOfMemory => return error.OutOfMemory,
        else => return std.mem.indexOf(u8, event.properties, placeholder_open) != null,
    };
    return jsonHoldsPlaceholder(value);
}

fn requestHoldsPlaceholder(r: Request) bool {
    if (std.mem.indexOf(u8, r.url, placeholder_open) != null) return true;
    for (r.headers) |h| if (std.mem.indexOf(u8, h.value, placeholder_open) != null) return true;
    return std.unicode.utf8ValidateSlice(r.body) and std.mem.indexOf(u8, r.body, placeholder_open) != null;
}

/// Check `decision` as the host checks what `transform` returned for
/// `event`: at most 16 requests (invalid_output), then the `refused` rule
/// (the event's own data holds `{{secret:` and so does a request, in its
/// URL, a header value or a UTF-8 body), then `validate` on each request
/// ("request N: ..."). Null when the host accepts it; a skip always passes.
pub fn validateDecision(gpa: std.mem.Allocator, event: Event, decision: Decision) std.mem.Allocator.Error!?Rejection {
    const requests = switch (decision) {
        .skip => return null,
        .fire => |r| r,
    };
    if (requests.len > max_requests) return .{ .kind = .invalid_output, .message = try std.fmt.allocPrint(
        gpa,
        "the plugin returned {d} requests; at most {d} are allowed per event (max_requests)",
        .{ requests.len, max_requests },
    ) };
    if (try eventHoldsPlaceholder(gpa, event)) {
        for (requests, 0..) |r, i| if (requestHoldsPlaceholder(r)) return .{ .kind = .refused, .message = try std.fmt.allocPrint(
            gpa,
            "request {d} holds a secret placeholder, and the event's own data holds the text \"{{{{secret:\": the host fills no placeholder it cannot tell from event text",
            .{i},
        ) };
    }
    for (requests, 0..) |r, i| {
        if (try validate(gpa, r)) |p| {
            const message = try std.fmt.allocPrint(gpa, "request {d}: {s}", .{ i, p });
            return .{ .kind = .invalid_output, .message = try truncateMarked(gpa, message, max_reason_bytes) };
        }
    }
    return null;
}

// ---------------------------------------------------------------------------
// The host: the real imports on wasm32, the test double elsewhere.

const host = if (is_wasm) wasm_host else testing.double;

const wasm_host = struct {
    const c = @import("transformer");

    fn borrow(s: []const u8) c.transformer_string_t {
        return .{ .ptr = @constCast(s.ptr), .len = s.len };
    }

    fn view(ptr: [*c]const u8, len: usize) []const u8 {
        return if (len == 0) "" else ptr[0..len];
    }

    fn log(level: LogLevel, message: []const u8) void {
        var m = borrow(message);
        c.wasmhook_plugin_log_log(@backingInt(level), &m);
    }

    fn configGet(gpa: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
        var k = borrow(key);
        var v: c.transformer_string_t = undefined;
        if (!c.wasmhook_plugin_config_get(&k, &v)) return null;
        defer c.transformer_string_free(&v);
        return try gpa.dupe(u8, view(v.ptr, v.len));
    }

    fn kvGet(gpa: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
        var k = borrow(key);
        var v: c.transformer_list_u8_t = undefined;
        if (!c.wasmhook_plugin_kv_get(&k, &v)) return null;
        defer c.transformer_list_u8_free(&v);
        return try gpa.dupe(u8, view(v.ptr, v.len));
    }

    fn kvSet(key: []const u8, value: []const u8) void {
        var k = borrow(key);
        var v: c.transformer_list_u8_t = .{ .ptr = @constCast(value.ptr), .len = value.len };
        c.wasmhook_plugin_kv_set(&k, &v);
    }

    fn kvDelete(key: []const u8) void {
        var k = borrow(key);
        c.wasmhook_plugin_kv_delete(&k);
    }

    fn kvIncrement(key: []const u8, delta: i64) i64 {
        var k = borrow(key);
        return c.wasmhook_plugin_kv_increment(&k, delta);
    }

    /// A malloc'd array of `n` items (freed by `cabi_post_transform`).
    fn mallocArray(comptime T: type, n: usize) [*c]T {
        if (n == 0) return null;
        const bytes = std.math.mul(usize, n, @sizeOf(T)) catch @trap();
        const ptr = std.c.malloc(bytes) orelse @trap();
        return @ptrCast(@alignCast(ptr));
    }

    /// A malloc'd copy of `s` (freed by `cabi_post_transform`).
    fn dup(s: []const u8) c.transformer_string_t {
        var out: c.transformer_string_t = undefined;
        c.transformer_string_dup_n(&out, s.ptr, s.len);
        return out;
    }

    fn toC(decision: Decision) c.transformer_decision_t {
        var out: c.transformer_decision_t = undefined;
        switch (decision) {
            .skip => |reason| {
                out.tag = c.WASMHOOK_PLUGIN_TYPES_DECISION_SKIP;
                out.val.skip = dup(reason);
            },
            .fire => |requests| {
                const reqs = mallocArray(c.wasmhook_plugin_types_request_t, requests.len);
                for (requests, 0..) |r, i| {
                    const headers = mallocArray(c.transformer_tuple2_string_string_t, r.headers.len);
                    for (r.headers, 0..) |h, j| headers[j] = .{ .f0 = dup(h.name), .f1 = dup(h.value) };
                    const body = dup(r.body);
                    reqs[i] = .{
                        .method = @backingInt(r.method),
                        .url = dup(r.url),
                        .headers = .{ .ptr = headers, .len = r.headers.len },
                        .body = .{ .ptr = body.ptr, .len = body.len },
                    };
                }
                out.tag = c.WASMHOOK_PLUGIN_TYPES_DECISION_FIRE;
                out.val.fire = .{ .ptr = reqs, .len = requests.len };
            },
        }
        return out;
    }

    fn fromC(event: *const c.transformer_event_t) Event {
        return .{
            .id = view(event.id.ptr, event.id.len),
            .name = view(event.name.ptr, event.name.len),
            .user_id = if (event.user_id.is_some) view(event.user_id.val.ptr, event.user_id.val.len) else null,
            .timestamp_ms = event.timestamp_ms,
            .properties = view(event.properties.ptr, event.properties.len),
        };
    }
};

/// Exports `transform` as the component's `transform` function. Call it
/// once, at the top level of the plugin: `comptime { wasmhook.exportPlugin(transform); }`.
/// `transform` is `fn (*Context, Event) E!Decision` for any error set `E`.
/// Does nothing on native targets (unit tests call `transform` through
/// `testing.run`).
pub fn exportPlugin(comptime transform: anytype) void {
    if (!is_wasm) return;
    const c = wasm_host.c;
    const S = struct {
        fn call(event: [*c]c.transformer_event_t, ret: [*c]c.transformer_decision_t, err: [*c]c.transformer_string_t) callconv(.c) bool {
            // The argument is ours to free, after everything that points
            // into it has been copied out.
            defer c.transformer_event_free(event);
            var arena = std.heap.ArenaAllocator.init(std.heap.c_allocator);
            defer arena.deinit();
            var cx: Context = .{ .arena = arena.allocator() };
            const decision = transform(&cx, wasm_host.fromC(event)) catch |e| {
                const message = if (e == error.PluginError) cx.err_message orelse "plugin error" else @errorName(e);
                err.* = wasm_host.dup(message);
                return false;
            };
            ret.* = wasm_host.toC(decision);
            return true;
        }
    };
    @export(&S.call, .{ .name = "exports_transformer_transform" });
}

/// The panic handler for plugins: `pub const panic = wasmhook.panic;` in
/// the plugin's root file. On wasm32 a panic (a failed safety check in
/// ReleaseSafe, `unreachable`, `@panic`) writes its message to the host's
/// log at error level and traps, which the host records as a plugin trap;
/// it never pulls in stack traces, debug info or WASI stderr. Natively it
/// is Zig's default handler, so tests show full traces.
pub const panic = if (is_wasm) std.debug.FullPanic(wasmPanic) else std.debug.FullPanic(std.debug.defaultPanic);

fn wasmPanic(message: []const u8, _: ?usize) noreturn {
    @branchHint(.cold);
    var buf: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "panic: {s}", .{truncate(message, 400)}) catch "panic";
    host.log(.err, line);
    @trap();
}

// ---------------------------------------------------------------------------

/// The native stand-in for the host, for unit tests of plugin logic:
/// settings, the kv store and log lines live in memory until `reset`.
///
/// `run` calls `transform` as the host would and judges the result as the
/// host does (`validateDecision`): the `Outcome` is `.ok`, `.err` (the
/// plugin's error, kind `plugin`), `.invalid_output`, `.refused` (the
/// event's own data and a request both hold `{{secret:`; kv writes made
/// during the run are kept, as on the host) or `.trap`. `decision()` fails
/// the test unless the host would accept the decision.
///
/// The kv store behaves like the host's (counters as 8 little-endian bytes
/// in the same key space, a non-8-byte value counting as 0, wrapping add),
/// caps included: keys of at most 1 KiB, values of at most 1 MiB, and per
/// invocation 10 000 calls and 8 MiB written (key plus value of every set,
/// key plus 8 bytes of every increment). A call past a cap traps: inside
/// `run` the outcome is `.trap` and every later kv call of that run does
/// nothing (Zig cannot stop the plugin there; the host would); outside
/// `run` it panics. The namespace quota (kv_max_mb) is not enforced. Log
/// lines are capped like the host's: 100 per invocation (then `run` adds
/// the host's note of how many were dropped), each cut to 2 KiB with the
/// mark "… (N bytes truncated)". An invocation starts with each `run` and
/// with `reset`.
///
/// ```zig
/// test "fires on the fifth booking" {
///     wasmhook.testing.reset();
///     defer wasmhook.testing.reset();
///     try wasmhook.testing.setConfig("every", "5");
///     var out = try wasmhook.testing.run(transform, .{ .id = "e1", .name = "flight.booked" });
///     defer out.deinit();
///     try std.testing.expectEqualStrings("...", out.decision().skip);
/// }
/// ```
pub const testing = struct {
    var state: ?std.heap.ArenaAllocator = null;
    var settings: std.StringArrayHashMapUnmanaged([]const u8) = .empty;
    var store: std.StringArrayHashMapUnmanaged([]const u8) = .empty;
    var lines: std.ArrayList([]const u8) = .empty;
    // Per invocation.
    var kv_ops: u32 = 0;
    var kv_written: u64 = 0;
    var log_lines: usize = 0;
    var logs_dropped: usize = 0;
    var in_run = false;
    var trap_message: ?[]const u8 = null;

    /// Longest kv key and value, in bytes.
    pub const max_kv_key_bytes: usize = 1024;
    pub const max_kv_value_bytes: usize = 1024 * 1024;
    /// kv calls, and bytes written, per invocation.
    pub const max_kv_ops: u32 = 10_000;
    pub const max_kv_written_bytes: u64 = 8 * 1024 * 1024;
    /// Log lines kept per invocation, and the longest kept line in bytes.
    pub const max_log_lines: usize = 100;
    pub const max_log_line_bytes: usize = 2048;

    fn gpa() std.mem.Allocator {
        if (state == null) state = std.heap.ArenaAllocator.init(std.heap.page_allocator);
        return state.?.allocator();
    }

    /// Forgets every setting, kv entry and log line; a new invocation starts.
    pub fn reset() void {
        if (state) |arena| arena.deinit();
        state = null;
        settings = .empty;
        store = .empty;
        lines = .empty;
        beginInvocation();
    }

    fn beginInvocation() void {
        kv_ops = 0;
        kv_written = 0;
        log_lines = 0;
        logs_dropped = 0;
        trap_message = null;
    }

    /// Sets what `config.get(key)` returns. The host's config values are
    /// always text (a TOML number or boolean becomes its text, `3` or
    /// `true`): pass them as such.
    pub fn setConfig(key: []const u8, value: []const u8) !void {
        const a = gpa();
        try settings.put(a, try a.dupe(u8, key), try a.dupe(u8, value));
    }

    /// The raw kv value under `key`. Counters are stored as the host
    /// stores them, 8 little-endian bytes: read them with
    /// `kv.counterValue(testing.kvValue(key))`.
    pub fn kvValue(key: []const u8) ?[]const u8 {
        return store.get(key);
    }

    /// Sets the raw kv value under `key` (test setup: not counted against
    /// the caps).
    pub fn setKv(key: []const u8, value: []const u8) !void {
        const a = gpa();
        try store.put(a, try a.dupe(u8, key), try a.dupe(u8, value));
    }

    /// The log lines kept so far, formatted as "LEVEL message".
    pub fn logs() []const []const u8 {
        return lines.items;
    }

    /// What `run` reports, as the host would record it.
    pub const Result = union(enum) {
        /// The decision, accepted.
        ok: Decision,
        /// The plugin's error (kind `plugin`).
        err: []const u8,
        /// The host refuses the decision (kind `invalid_output`).
        invalid_output: []const u8,
        /// The event's own data and a request hold `{{secret:` (kind `refused`).
        refused: []const u8,
        /// A kv call went past a cap, or a string is not UTF-8 (kind `trap`).
        trap: []const u8,
    };

    /// The outcome of one `run`: the decision or error, plus the arena that
    /// holds them (free it with `deinit`).
    pub const Outcome = struct {
        arena: *std.heap.ArenaAllocator,
        result: Result,

        /// The decision; fails the test unless the host would accept it.
        pub fn decision(o: Outcome) Decision {
            return switch (o.result) {
                .ok => |d| d,
                .err => |message| std.debug.panic("transform returned err({s})", .{message}),
                .invalid_output, .refused, .trap => |message| std.debug.panic("the host would record an error of kind {s}: {s}", .{ o.kind(), message }),
            };
        }

        /// The plugin's error message; fails the test otherwise.
        pub fn errMessage(o: Outcome) []const u8 {
            return switch (o.result) {
                .err => |message| message,
                .ok => |d| std.debug.panic("transform returned ok ({s})", .{@tagName(d)}),
                .invalid_output, .refused, .trap => |message| std.debug.panic("the host would record an error of kind {s}: {s}", .{ o.kind(), message }),
            };
        }

        /// The error kind the host records: "ok" for none, else "plugin",
        /// "invalid_output", "refused" or "trap".
        pub fn kind(o: Outcome) []const u8 {
            return switch (o.result) {
                .err => "plugin",
                else => @tagName(o.result),
            };
        }

        /// The error message of any kind; fails the test when the host would
        /// accept the decision.
        pub fn failure(o: Outcome) []const u8 {
            return switch (o.result) {
                .ok => |d| std.debug.panic("transform returned ok ({s})", .{@tagName(d)}),
                .err, .invalid_output, .refused, .trap => |message| message,
            };
        }

        pub fn deinit(o: *Outcome) void {
            const backing = o.arena.child_allocator;
            o.arena.deinit();
            backing.destroy(o.arena);
        }
    };

    /// Calls `transform` as the host would, with a fresh arena and a new
    /// invocation, and judges its result as the host does.
    pub fn run(comptime transform: anytype, event: Event) !Outcome {
        const arena = try std.testing.allocator.create(std.heap.ArenaAllocator);
        arena.* = std.heap.ArenaAllocator.init(std.testing.allocator);
        errdefer {
            arena.deinit();
            std.testing.allocator.destroy(arena);
        }
        const a = arena.allocator();
        beginInvocation();
        in_run = true;
        var cx: Context = .{ .arena = a };
        const returned = transform(&cx, event);
        in_run = false;
        finishLogs();
        if (trap_message) |message| return .{ .arena = arena, .result = .{ .trap = try a.dupe(u8, message) } };
        const result = returned catch |e| {
            const message = if (e == error.PluginError) cx.err_message orelse "plugin error" else @errorName(e);
            if (!std.unicode.utf8ValidateSlice(message)) return .{ .arena = arena, .result = .{ .trap = "the error message is not valid UTF-8 (the component boundary traps)" } };
            return .{ .arena = arena, .result = .{ .err = try truncateMarked(a, message, max_reason_bytes) } };
        };
        switch (result) {
            .skip => |reason| {
                if (!std.unicode.utf8ValidateSlice(reason)) return .{ .arena = arena, .result = .{ .trap = "the skip reason is not valid UTF-8 (the component boundary traps)" } };
                return .{ .arena = arena, .result = .{ .ok = .{ .skip = try truncateMarked(a, reason, max_reason_bytes) } } };
            },
            .fire => |requests| {
                for (requests) |r| {
                    if (!std.unicode.utf8ValidateSlice(r.url)) return .{ .arena = arena, .result = .{ .trap = "a URL is not valid UTF-8 (the component boundary traps)" } };
                    for (r.headers) |h| if (!std.unicode.utf8ValidateSlice(h.name) or !std.unicode.utf8ValidateSlice(h.value))
                        return .{ .arena = arena, .result = .{ .trap = "a header is not valid UTF-8 (the component boundary traps)" } };
                }
            },
        }
        if (try validateDecision(a, event, result)) |rejection| return .{ .arena = arena, .result = switch (rejection.kind) {
            .invalid_output => .{ .invalid_output = rejection.message },
            .refused => .{ .refused = rejection.message },
        } };
        return .{ .arena = arena, .result = .{ .ok = result } };
    }

    /// The host's note on the log lines dropped during the invocation.
    fn finishLogs() void {
        if (logs_dropped == 0) return;
        const a = gpa();
        const note = std.fmt.allocPrint(a, "warn {d} log lines dropped (cap {d} per invocation)", .{ logs_dropped, max_log_lines }) catch return;
        lines.append(a, note) catch return;
        logs_dropped = 0;
    }

    /// Where the host traps: inside `run`, remembered (the outcome is
    /// `.trap`); outside, a panic.
    fn trap(comptime fmt: []const u8, args: anytype) void {
        const message = std.fmt.allocPrint(gpa(), fmt, args) catch "kv: cap exceeded";
        if (!in_run) @panic(message);
        if (trap_message == null) trap_message = message;
    }

    /// Counts one kv call and checks its key; false when it traps (or a
    /// trap already happened in this run).
    fn kvOp(key: []const u8) bool {
        if (trap_message != null) return false;
        kv_ops += 1;
        if (kv_ops > max_kv_ops) {
            trap("kv: more than {d} operations in one invocation", .{max_kv_ops});
            return false;
        }
        if (key.len > max_kv_key_bytes) {
            trap("kv: key of {d} bytes exceeds the {d}-byte limit", .{ key.len, max_kv_key_bytes });
            return false;
        }
        return true;
    }

    /// Counts the bytes a write stores; false when it traps.
    fn kvWrite(key: []const u8, value_len: usize) bool {
        kv_written += key.len + value_len;
        if (kv_written > max_kv_written_bytes) {
            trap("kv: more than {d} bytes written in one invocation (keys and values of every set and increment)", .{max_kv_written_bytes});
            return false;
        }
        return true;
    }

    const double = struct {
        fn log(level: LogLevel, message: []const u8) void {
            if (log_lines >= max_log_lines) {
                logs_dropped += 1;
                return;
            }
            log_lines += 1;
            const a = gpa();
            const kept = truncateMarked(a, message, max_log_line_bytes) catch return;
            const line = std.fmt.allocPrint(a, "{s} {s}", .{ @tagName(level), kept }) catch return;
            lines.append(a, line) catch return;
        }

        fn configGet(a: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
            const value = settings.get(key) orelse return null;
            return try a.dupe(u8, value);
        }

        fn kvGet(a: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
            if (!kvOp(key)) return null;
            const value = store.get(key) orelse return null;
            return try a.dupe(u8, value);
        }

        fn kvSet(key: []const u8, value: []const u8) void {
            if (!kvOp(key)) return;
            if (value.len > max_kv_value_bytes) {
                trap("kv: value of {d} bytes exceeds the {d}-byte limit", .{ value.len, max_kv_value_bytes });
                return;
            }
            if (!kvWrite(key, value.len)) return;
            setKv(key, value) catch @panic("out of memory");
        }

        fn kvDelete(key: []const u8) void {
            if (!kvOp(key)) return;
            _ = store.orderedRemove(key);
        }

        // As the host does: 8 little-endian bytes in the same key space as
        // get/set, a value of another length counts as 0, wrapping add.
        fn kvIncrement(key: []const u8, delta: i64) i64 {
            if (!kvOp(key) or !kvWrite(key, 8)) return 0;
            const new = kv.counterValue(store.get(key)) +% delta;
            var bytes: [8]u8 = undefined;
            std.mem.writeInt(i64, &bytes, new, .little);
            setKv(key, &bytes) catch @panic("out of memory");
            return new;
        }
    };
};

test "appendJsonString escapes quotes, backslashes and control characters" {
    const a = std.testing.allocator;
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a);
    try appendJsonString(&out, a, "a\"b\\c\nd\x01é");
    try std.testing.expectEqualStrings("\"a\\\"b\\\\c\\nd\\u0001é\"", out.items);
}

test "appendPathSegment keeps unreserved characters only" {
    const a = std.testing.allocator;
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a);
    try appendPathSegment(&out, a, "u-1_~.x/../?a b");
    try std.testing.expectEqualStrings("u-1_~.x%2F..%2F%3Fa%20b", out.items);
}

test "appendPathSegment refuses empty, dot and dot-dot segments" {
    const a = std.testing.allocator;
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(a);
    try out.appendSlice(a, "https://x.test/c/");
    for ([_][]const u8{ "", ".", ".." }) |s| {
        try std.testing.expectError(error.InvalidPathSegment, appendPathSegment(&out, a, s));
        try std.testing.expect(!isPathSegment(s));
    }
    try std.testing.expectEqualStrings("https://x.test/c/", out.items);
    // Anything else is one segment: dots with other characters, "%2e" (its
    // "%" is encoded, so it stays data), three dots.
    for ([_][]const u8{ "...", ".a", "a..", "%2e%2e", "../x" }) |s| try std.testing.expect(isPathSegment(s));
    try appendPathSegment(&out, a, "%2e%2e");
    try appendPathSegment(&out, a, "...");
    try std.testing.expectEqualStrings("https://x.test/c/%252e%252e...", out.items);
}

test "JsonObject and eventJson build valid JSON" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    var o = JsonObject.init(a);
    try std.testing.expectEqualStrings("{}", try o.finish());
    const text = try eventJson(a, .{ .id = "e\"1", .name = "x", .timestamp_ms = 7, .properties = "{\"k\":[1]}" });
    try std.testing.expectEqualStrings(
        "{\"id\":\"e\\\"1\",\"name\":\"x\",\"user_id\":null,\"timestamp_ms\":7,\"properties\":{\"k\":[1]}}",
        text,
    );
    _ = try std.json.parseFromSliceLeaky(std.json.Value, a, text, .{});
}

test "truncate cuts on a character boundary" {
    try std.testing.expectEqualStrings("ab", truncate("abé", 3));
    try std.testing.expectEqualStrings("abé", truncate("abé", 4));
}

test "config.get trims and treats blank as unset; kv counters count" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("a", "  x ");
    try testing.setConfig("b", "  ");
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    try std.testing.expectEqualStrings("x", (try config.get(arena.allocator(), "a")).?);
    try std.testing.expect(try config.get(arena.allocator(), "b") == null);
    try std.testing.expect(try config.get(arena.allocator(), "c") == null);
    try std.testing.expectEqual(@as(i64, 1), kv.increment("n", 1));
    try std.testing.expectEqual(@as(i64, 3), kv.increment("n", 2));
    try std.testing.expectEqual(@as(i64, 3), kv.counterValue(testing.kvValue("n")));
}

test "kv counters are stored like on the host: 8 little-endian bytes, readable with get" {
    testing.reset();
    defer testing.reset();
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    try std.testing.expectEqual(@as(i64, 1), kv.increment("n", 1));
    try std.testing.expectEqualSlices(u8, &.{ 1, 0, 0, 0, 0, 0, 0, 0 }, (try kv.get(a, "n")).?);
    try std.testing.expectEqual(@as(i64, 0x0103), kv.increment("n", 0x0102));
    try std.testing.expectEqualSlices(u8, &.{ 3, 1, 0, 0, 0, 0, 0, 0 }, (try kv.get(a, "n")).?);
    try std.testing.expectEqual(@as(i64, 0x0103), try kv.getCounter(a, "n"));
    try std.testing.expectEqual(@as(i64, -1), kv.increment("n", -0x0104));
    try std.testing.expectEqualSlices(u8, &@as([8]u8, @splat(0xff)), (try kv.get(a, "n")).?);
    try std.testing.expectEqual(@as(i64, -1), try kv.getCounter(a, "n"));
    try std.testing.expectEqual(@as(i64, 0), try kv.getCounter(a, "absent"));
    try std.testing.expect(testing.kvValue("absent") == null);
    // Decimal text is not a counter.
    try std.testing.expectError(error.InvalidCharacter, std.fmt.parseInt(i64, (try kv.get(a, "n")).?, 10));
}

test "kv increment counts a value that is not 8 bytes as 0 and wraps on overflow" {
    testing.reset();
    defer testing.reset();
    for ([_][]const u8{ "41", "", "123456789" }) |value| {
        kv.set("n", value);
        try std.testing.expectEqual(@as(i64, 0), kv.counterValue(testing.kvValue("n")));
        try std.testing.expectEqual(@as(i64, 2), kv.increment("n", 2));
    }
    var max: [8]u8 = undefined;
    std.mem.writeInt(i64, &max, std.math.maxInt(i64), .little);
    kv.set("n", &max);
    try std.testing.expectEqual(@as(i64, std.math.minInt(i64)), kv.increment("n", 1));
    try std.testing.expectEqualSlices(u8, &.{ 0, 0, 0, 0, 0, 0, 0, 0x80 }, testing.kvValue("n").?);
    try std.testing.expectEqual(@as(i64, std.math.maxInt(i64)), kv.increment("n", -1));
    try std.testing.expectEqual(@as(i64, 0), kv.counterValue(null));
}

test "secret names: [A-Za-z0-9_]+ only (others are a compile error in secret and bearerSecret)" {
    try std.testing.expectEqualStrings("{{secret:API_TOKEN_2}}", secret("API_TOKEN_2"));
    for ([_][]const u8{ "A", "a_1", "_" }) |name| try std.testing.expect(isSecretName(name));
    for ([_][]const u8{ "", "API-TOKEN", "A B", "X}}", "é", "A.B" }) |name| try std.testing.expect(!isSecretName(name));
    comptime std.debug.assert(!isSecretName("A-B"));
}

fn expectUrl(url: []const u8, want_problem: ?[]const u8) !void {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const problem = try validateUrl(arena.allocator(), url);
    if (want_problem) |want| {
        const got = problem orelse {
            std.debug.print("accepted: {s}\n", .{url});
            return error.TestExpectedProblem;
        };
        if (std.mem.indexOf(u8, got, want) == null) {
            std.debug.print("{s}: {s} (want {s})\n", .{ url, got, want });
            return error.TestWrongProblem;
        }
    } else if (problem) |got| {
        std.debug.print("{s}: {s}\n", .{ url, got });
        return error.TestUnexpectedProblem;
    }
}

test "URLs the host accepts" {
    for ([_][]const u8{
        "https://api.example.com/v1/x",                          "http://example.com",
        "HTTPS://Example.COM:8443/a?b=c#d",                      "https://hooks.slack.com/services/{{secret:SLACK_PATH}}",
        "https://graph.facebook.com/me?access_token={{secret:T}}", "http://127.0.0.1:9000/hook",
        "http://[::1]:8080/x",                                   "http://[::ffff:1.2.3.4]/",
        "https://bücher.example/",                               "http://0x7f.1/",
        "http://2130706433/",                                    "https:///x",
        "https://example.com:/x",                                "http://a%2eb/",
    }) |url| try expectUrl(url, null);
}

test "URLs the host refuses" {
    const cases = [_][2][]const u8{
        .{ "not a url", "whitespace" },                       .{ "/relative/path", "absolute" },
        .{ "ftp://example.com/x", "scheme" },                 .{ "https://exa\nmple.com", "control" },
        .{ "https://example.com/\u{a0}", "whitespace" },      .{ "https://example.com/\u{3000}", "whitespace" },
        .{ "https://example.com\\@evil.com/", "backslash" },  .{ "https://{{secret:HOST}}/x", "host" },
        .{ "https://example.com/{{secret:}}", "malformed" },  .{ "https://example.com/{{secret:A-B}}", "malformed" },
        .{ "https://user:pass@example.com/", "credentials" }, .{ "https://example.com:99999/", "port" },
        .{ "https://example.com:8o/", "port" },               .{ "https://[fe80::1%25eth0]/", "zone" },
        .{ "https://[nope]/", "IPv6" },                       .{ "https://[1:2:3:4:5:6:7:8:9]/", "IPv6" },
        .{ "https://", "no host" },                           .{ "https://:80/", "no host" },
        .{ "http://a\"b.example/", "refuses" },               .{ "http://a%20b.example/", "refuses" },
        .{ "http://999.1.1.1/", "IPv4" },                     .{ "http://1.2.3.4.5/", "IPv4" },
        .{ "http://example.09/", "IPv4" },                    .{ "http://1..2/", "IPv4" },
    };
    for (cases) |c| try expectUrl(c[0], c[1]);
    var long: [9000]u8 = @splat('a');
    @memcpy(long[0..20], "https://example.com/");
    try expectUrl(&long, "limit");
}

test "IPv6 addresses as the URL standard reads them" {
    for ([_][]const u8{ "::", "::1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "fe80::1", "1:2:3:4:5:6:1.2.3.4", "1::" }) |t| {
        if (!isIpv6(t)) {
            std.debug.print("refused {s}\n", .{t});
            return error.TestExpectedValid;
        }
    }
    for ([_][]const u8{ "", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1", "1:", "12345::", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "nope", "::01.2.3.4" }) |t| {
        if (isIpv6(t)) {
            std.debug.print("accepted {s}\n", .{t});
            return error.TestExpectedInvalid;
        }
    }
}

fn expectRequest(request: Request, want_problem: ?[]const u8) !void {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const problem = try validate(arena.allocator(), request);
    if (want_problem) |want| {
        const got = problem orelse return error.TestExpectedProblem;
        if (std.mem.indexOf(u8, got, want) == null) {
            std.debug.print("{s} (want {s})\n", .{ got, want });
            return error.TestWrongProblem;
        }
    } else if (problem) |got| {
        std.debug.print("{s}\n", .{got});
        return error.TestUnexpectedProblem;
    }
}

test "headers and body" {
    const url = "https://example.com/";
    try expectRequest(.{ .method = .post, .url = url, .headers = &.{.{ .name = "X-Ok", .value = "fine\there" }} }, null);
    try expectRequest(.{ .method = .post, .url = url, .headers = &.{.{ .name = "x-bad", .value = "a\r\nInjected: 1" }} }, "CR/LF");
    for ([_][]const u8{ "bad name", "", "a:b", "é" }) |name|
        try expectRequest(.{ .method = .post, .url = url, .headers = &.{.{ .name = name, .value = "v" }} }, "header name");
    for (forbidden_headers ++ [_][]const u8{ "Host", "Content-Length", "TRANSFER-ENCODING", "Connection", "Expect" }) |name|
        try expectRequest(.{ .method = .post, .url = url, .headers = &.{.{ .name = name, .value = "x" }} }, "set by the host");
    const many: [65]Header = @splat(.{ .name = "x-a", .value = "v" });
    try expectRequest(.{ .method = .post, .url = url, .headers = &many }, "at most 64");
    const big: [64 * 1024]u8 = @splat('v');
    try expectRequest(.{ .method = .post, .url = url, .headers = &.{.{ .name = "x-big", .value = &big }} }, "65536-byte");
    try expectRequest(.{ .method = .post, .url = url, .headers = &.{.{ .name = "authorization", .value = "Bearer {{secret:A B}}" }} }, "malformed");
    const body: [max_body_bytes + 1]u8 = @splat('x');
    try expectRequest(.{ .method = .post, .url = url, .body = body[0..max_body_bytes] }, null);
    try expectRequest(.{ .method = .post, .url = url, .body = &body }, "max_body_bytes");
    try expectRequest(.{ .method = .post, .url = url, .body = "{\"k\":\"{{secret:KEY\"}" }, "body: malformed");
    try expectRequest(.{ .method = .post, .url = url, .body = "\xff{{secret:" }, null); // not UTF-8: not searched
    try expectRequest(.{ .method = .post, .url = url, .body = "{\"k\":\"{{secret:KEY}}\"}" }, null);
}

test "decisions: request count, the refused rule, each request" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const a = arena.allocator();
    const plain: Request = .{ .method = .get, .url = "https://a.example/" };
    const with_secret: Request = .{ .method = .get, .url = "https://a.example/", .headers = &.{.{ .name = "authorization", .value = "Bearer {{secret:T}}" }} };
    const event: Event = .{ .id = "e", .name = "n" };
    try std.testing.expect(try validateDecision(a, event, .{ .skip = "x" }) == null);
    const seventeen: [17]Request = @splat(plain);
    const too_many = (try validateDecision(a, event, .{ .fire = &seventeen })).?;
    try std.testing.expect(too_many.kind == .invalid_output and std.mem.indexOf(u8, too_many.message, "17 requests") != null);
    const second_bad = (try validateDecision(a, event, .{ .fire = &.{ plain, .{ .method = .get, .url = "gopher://b" } } })).?;
    try std.testing.expect(std.mem.startsWith(u8, second_bad.message, "request 1: "));
    for ([_]Event{
        .{ .id = "{{secret:X}}", .name = "n" },
        .{ .id = "e", .name = "{{secret:X}}" },
        .{ .id = "e", .name = "n", .user_id = "u{{secret:" },
        .{ .id = "e", .name = "n", .properties = "{\"note\":[\"hi {{secret:T}}\"]}" },
        .{ .id = "e", .name = "n", .properties = "{\"{{secret:\":1}" },
        .{ .id = "e", .name = "n", .properties = "{\"a\":\"\\u007b{secret:X}}\"}" },
    }) |hostile| {
        try std.testing.expect(try eventHoldsPlaceholder(a, hostile));
        const r = (try validateDecision(a, hostile, .{ .fire = &.{ plain, with_secret } })).?;
        try std.testing.expect(r.kind == .refused and std.mem.startsWith(u8, r.message, "request 1 "));
    }
    const noted: Event = .{ .id = "e", .name = "n", .properties = "{\"note\":\"{{secret:\"}" };
    try std.testing.expect(try validateDecision(a, noted, .{ .fire = &.{plain} }) == null);
    try std.testing.expect(try validateDecision(a, noted, .{ .skip = "s" }) == null);
    try std.testing.expect(try validateDecision(a, noted, .{ .fire = &.{.{ .method = .post, .url = "https://a.example/", .body = "\xff{{secret:X}}" }} }) == null);
    try std.testing.expect(try validateDecision(a, event, .{ .fire = &.{with_secret} }) == null);
}

/// A plugin doing what config `mode` says, for the tests of `testing.run`.
fn modes(cx: *Context, event: Event) Error!Decision {
    _ = kv.increment("calls", 1);
    const mode = try config.get(cx.arena, "mode") orelse "ok";
    const props = try cx.properties(event);
    const url = switch (props.get("url") orelse .null) {
        .string => |s| s,
        else => "https://x.test/",
    };
    const auth: []const Header = try cx.arena.dupe(Header, &.{.{ .name = "authorization", .value = try bearerSecret(cx.arena, "TOKEN") }});
    const eq = std.mem.eql;
    if (eq(u8, mode, "err")) return cx.fail("no", .{});
    if (eq(u8, mode, "kv-loop")) {
        var i: usize = 0;
        while (i < 20_000) : (i += 1) _ = try kv.get(cx.arena, "k");
        kv.set("after-trap", "x");
        return cx.skip("looped", .{});
    }
    if (eq(u8, mode, "kv-big")) {
        const value = try cx.arena.alloc(u8, testing.max_kv_value_bytes + 1);
        @memset(value, 0);
        kv.set("big", value);
        return cx.skip("set", .{});
    }
    if (eq(u8, mode, "loud")) {
        for (0..120) |i| cx.log(.info, "{d}", .{i});
        const reason = try cx.arena.alloc(u8, 5000);
        @memset(reason, 'r');
        return .{ .skip = reason };
    }
    if (eq(u8, mode, "host-header")) return cx.fireOne(.{ .method = .post, .url = url, .headers = &.{.{ .name = "Host", .value = "x.test" }} });
    if (eq(u8, mode, "userinfo")) return cx.fireOne(.{ .method = .get, .url = "https://u:p@x.test/" });
    if (eq(u8, mode, "too-many")) {
        const requests = try cx.arena.alloc(Request, 17);
        @memset(requests, .{ .method = .post, .url = url });
        return .{ .fire = requests };
    }
    if (eq(u8, mode, "copy-note")) {
        const note = switch (props.get("note") orelse .null) {
            .string => |s| s,
            else => "",
        };
        return cx.fireOne(.{ .method = .post, .url = url, .headers = auth, .body = note });
    }
    return cx.fireOne(.{ .method = .post, .url = url, .headers = auth });
}

fn runMode(mode: []const u8, properties: []const u8) !testing.Outcome {
    try testing.setConfig("mode", mode);
    return testing.run(modes, .{ .id = "e", .name = "n", .properties = properties });
}

test "testing.run reports what the host would" {
    testing.reset();
    defer testing.reset();
    {
        var out = try runMode("ok", "{}");
        defer out.deinit();
        try std.testing.expectEqual(@as(usize, 1), out.decision().fire.len);
        try std.testing.expectEqualStrings("ok", out.kind());
    }
    const cases = [_][3][]const u8{
        .{ "err", "plugin", "no" },
        .{ "kv-loop", "trap", "more than 10000 operations" },
        .{ "kv-big", "trap", "value of 1048577 bytes" },
        .{ "host-header", "invalid_output", "\"host\" is set by the host" },
        .{ "userinfo", "invalid_output", "user:pass@" },
        .{ "too-many", "invalid_output", "17 requests" },
    };
    for (cases) |c| {
        var out = try runMode(c[0], "{}");
        defer out.deinit();
        try std.testing.expectEqualStrings(c[1], out.kind());
        if (std.mem.indexOf(u8, out.failure(), c[2]) == null) {
            std.debug.print("{s}: {s}\n", .{ c[0], out.failure() });
            return error.TestWrongMessage;
        }
    }
    // Nothing after the trap happened.
    try std.testing.expect(testing.kvValue("after-trap") == null);
    var out = try runMode("ok", "{\"url\":\"ftp://x.test/\"}");
    defer out.deinit();
    try std.testing.expect(std.mem.startsWith(u8, out.failure(), "request 0: URL scheme"));
}

test "testing.run refuses placeholders when the event holds the text, and kv writes are kept" {
    testing.reset();
    defer testing.reset();
    const hostile = "{\"note\":\"{{secret:TOKEN}}\"}";
    for ([_][]const u8{ "copy-note", "ok" }) |mode| {
        var out = try runMode(mode, hostile);
        defer out.deinit();
        try std.testing.expectEqualStrings("refused", out.kind());
    }
    try std.testing.expectEqual(@as(i64, 2), kv.counterValue(testing.kvValue("calls")));
    var out = try runMode("copy-note", "{\"note\":\"hello\"}");
    defer out.deinit();
    try std.testing.expectEqualStrings("hello", out.decision().fire[0].body);
}

test "testing.run caps log lines and cuts reasons like the host" {
    testing.reset();
    defer testing.reset();
    var out = try runMode("loud", "{}");
    defer out.deinit();
    try std.testing.expect(std.mem.endsWith(u8, out.decision().skip, "\u{2026} (904 bytes truncated)"));
    try std.testing.expectEqual(@as(usize, 101), testing.logs().len);
    try std.testing.expectEqualStrings("info 99", testing.logs()[99]);
    try std.testing.expectEqualStrings("warn 20 log lines dropped (cap 100 per invocation)", testing.logs()[100]);
    const xs: [3000]u8 = @splat('x');
    log(.info, &xs);
    try std.testing.expectEqual(@as(usize, 101), testing.logs().len); // still the same invocation: capped
    testing.reset();
    log(.info, &xs);
    const line = testing.logs()[0];
    try std.testing.expectEqualStrings("info " ++ xs[0..2048], line[0 .. 5 + 2048]);
    try std.testing.expectEqualStrings("\u{2026} (952 bytes truncated)", line[5 + 2048 ..]);
}

test "kv writes up to the caps pass; reset starts a new invocation" {
    testing.reset();
    defer testing.reset();
    const value: [1024 * 1024 - 1]u8 = @splat(0);
    for ("01234567") |ch| kv.set(&.{ch}, &value); // exactly 8 MiB with the keys
    kv.delete("0");
    try std.testing.expect(testing.kvValue("1") != null);
    testing.reset(); // a new invocation
    const key: [1024]u8 = @splat('k');
    kv.set(&key, "v");
    try std.testing.expectEqualStrings("v", testing.kvValue(&key).?);
}
