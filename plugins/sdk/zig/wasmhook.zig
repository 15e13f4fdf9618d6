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
pub fn bearerSecret(gpa: std.mem.Allocator, comptime name: []const u8) Error![]const u8 {
    return gpa.dupe(u8, "Bearer {{secret:" ++ name ++ "}}");
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
/// settings, the kv store and log lines live in memory until `reset`. The
/// kv store behaves like the host's (counters as 8 little-endian bytes in
/// the same key space, a non-8-byte value counting as 0, wrapping add); the
/// host's caps (calls and bytes per invocation, the quota) are not enforced.
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

    fn gpa() std.mem.Allocator {
        if (state == null) state = std.heap.ArenaAllocator.init(std.heap.page_allocator);
        return state.?.allocator();
    }

    /// Forgets every setting, kv entry and log line.
    pub fn reset() void {
        if (state) |arena| arena.deinit();
        state = null;
        settings = .empty;
        store = .empty;
        lines = .empty;
    }

    /// Sets what `config.get(key)` returns.
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

    /// Sets the raw kv value under `key`.
    pub fn setKv(key: []const u8, value: []const u8) !void {
        const a = gpa();
        try store.put(a, try a.dupe(u8, key), try a.dupe(u8, value));
    }

    /// The log lines written so far, formatted as "LEVEL message".
    pub fn logs() []const []const u8 {
        return lines.items;
    }

    /// The outcome of one `run`: the decision or error message, plus the
    /// arena that holds them (free it with `deinit`).
    pub const Outcome = struct {
        arena: *std.heap.ArenaAllocator,
        result: union(enum) { ok: Decision, err: []const u8 },

        /// The decision; fails the test when the plugin returned an error.
        pub fn decision(o: Outcome) Decision {
            return switch (o.result) {
                .ok => |d| d,
                .err => |message| std.debug.panic("transform returned err({s})", .{message}),
            };
        }

        /// The error message; fails the test when the plugin decided.
        pub fn errMessage(o: Outcome) []const u8 {
            return switch (o.result) {
                .err => |message| message,
                .ok => |d| std.debug.panic("transform returned ok ({s})", .{@tagName(d)}),
            };
        }

        pub fn deinit(o: *Outcome) void {
            const backing = o.arena.child_allocator;
            o.arena.deinit();
            backing.destroy(o.arena);
        }
    };

    /// Calls `transform` as the host would, with a fresh arena.
    pub fn run(comptime transform: anytype, event: Event) !Outcome {
        const arena = try std.testing.allocator.create(std.heap.ArenaAllocator);
        arena.* = std.heap.ArenaAllocator.init(std.testing.allocator);
        var cx: Context = .{ .arena = arena.allocator() };
        const result = transform(&cx, event) catch |e| {
            const message = if (e == error.PluginError) cx.err_message orelse "plugin error" else @errorName(e);
            return .{ .arena = arena, .result = .{ .err = message } };
        };
        return .{ .arena = arena, .result = .{ .ok = result } };
    }

    const double = struct {
        fn log(level: LogLevel, message: []const u8) void {
            const a = gpa();
            const line = std.fmt.allocPrint(a, "{s} {s}", .{ @tagName(level), message }) catch return;
            lines.append(a, line) catch return;
        }

        fn configGet(a: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
            const value = settings.get(key) orelse return null;
            return try a.dupe(u8, value);
        }

        fn kvGet(a: std.mem.Allocator, key: []const u8) Error!?[]const u8 {
            const value = store.get(key) orelse return null;
            return try a.dupe(u8, value);
        }

        fn kvSet(key: []const u8, value: []const u8) void {
            setKv(key, value) catch @panic("out of memory");
        }

        fn kvDelete(key: []const u8) void {
            _ = store.orderedRemove(key);
        }

        // As the host does: 8 little-endian bytes in the same key space as
        // get/set, a value of another length counts as 0, wrapping add.
        fn kvIncrement(key: []const u8, delta: i64) i64 {
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
