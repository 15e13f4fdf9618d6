//! airline-loyalty: a wasmhook plugin written in Zig.
//!
//! Counts each user's `flight.booked` events in the plugin's `kv` store and,
//! on every Nth booking (config `every`, default 5), asks the airline's
//! loyalty API to put a discount on the customer's account:
//! `PUT {loyalty_url}/customers/{user_id}/discounts` with
//! `authorization: Bearer {{secret:LOYALTY_API_KEY}}` and the JSON body
//! `{"percent":10,"reason":"booking 5","event_id":"<event id>"}`.
//! Other bookings are skipped with a reason like `booking 3 of 5 ...`.
//!
//! The counter lives under `bookings:{user_id}` (as every `kv.increment`
//! counter: 8 little-endian bytes, read back with `kv.getCounter`);
//! `last:{user_id}` remembers the id of the event that last moved it, so a
//! redelivery of that same event reuses the count instead of counting the
//! booking twice. A user id of "." or ".." is skipped: the URL parser would
//! turn `customers/../discounts` into `discounts`.
//!
//! Build: scripts/plugins/zig.sh; test: scripts/plugins/zig.sh test.

const std = @import("std");
const wasmhook = @import("wasmhook");

const Context = wasmhook.Context;
const Decision = wasmhook.Decision;
const Event = wasmhook.Event;

comptime {
    wasmhook.exportPlugin(transform);
}

/// Panics (failed safety checks) log their message to the host and trap.
pub const panic = wasmhook.panic;

const default_loyalty_url = "https://api.airline.example.com/v1";

/// The validated settings.
const Settings = struct {
    every: i64,
    percent: i64,
    /// Without trailing slashes.
    loyalty_url: []const u8,

    fn load(cx: *Context) wasmhook.Error!Settings {
        const every = try wasmhook.config.int(cx, "every", 5);
        if (every < 1) return cx.fail("config every must be a positive integer (got {d})", .{every});
        const percent = try wasmhook.config.int(cx, "percent", 10);
        if (percent < 1 or percent > 100) return cx.fail("config percent must be between 1 and 100 (got {d})", .{percent});
        const url = try wasmhook.config.get(cx.arena, "loyalty_url") orelse default_loyalty_url;
        if (!std.mem.startsWith(u8, url, "https://") and !std.mem.startsWith(u8, url, "http://"))
            return cx.fail("config loyalty_url must start with https:// or http://", .{});
        return .{ .every = every, .percent = percent, .loyalty_url = std.mem.trimEnd(u8, url, "/") };
    }
};

pub fn transform(cx: *Context, event: Event) wasmhook.Error!Decision {
    if (!std.mem.eql(u8, event.name, "flight.booked")) {
        const name = wasmhook.truncate(event.name, 64);
        return cx.skip("not a flight.booked event (got {s}{s})", .{ name, if (name.len < event.name.len) "..." else "" });
    }
    const user_id = event.user_id orelse "";
    if (user_id.len == 0) return cx.skip("flight.booked event has no user_id", .{});
    // Checked before counting: such a booking can never earn its discount.
    if (!wasmhook.isPathSegment(user_id))
        return cx.skip("user_id \"{s}\" cannot be used in the loyalty URL (\".\" and \"..\" are refused)", .{user_id});
    const settings = try Settings.load(cx);

    const count = try countBooking(cx, user_id, event.id);
    if (@mod(count, settings.every) != 0) {
        const position = @mod(count -% 1, settings.every) + 1;
        return cx.skip("booking {d} of {d}: no discount until booking {d} ({d} in total)", .{
            position, settings.every, (count - position) +| settings.every, count,
        });
    }

    var url: std.ArrayList(u8) = .empty;
    try url.appendSlice(cx.arena, settings.loyalty_url);
    try url.appendSlice(cx.arena, "/customers/");
    wasmhook.appendPathSegment(&url, cx.arena, user_id) catch |e| switch (e) {
        error.InvalidPathSegment => unreachable, // checked above
        error.OutOfMemory => return error.OutOfMemory,
    };
    try url.appendSlice(cx.arena, "/discounts");

    var body = wasmhook.JsonObject.init(cx.arena);
    try body.int("percent", settings.percent);
    try body.string("reason", try cx.print("booking {d}", .{count}));
    try body.string("event_id", event.id);

    const headers = try cx.arena.dupe(wasmhook.Header, &.{
        .{ .name = "content-type", .value = "application/json" },
        .{ .name = "authorization", .value = try wasmhook.bearerSecret(cx.arena, "LOYALTY_API_KEY") },
    });
    cx.log(.info, "user {s}: booking {d} earns {d}% off (one discount every {d} bookings)", .{
        user_id, count, settings.percent, settings.every,
    });
    return cx.fireOne(.{ .method = .put, .url = url.items, .headers = headers, .body = try body.finish() });
}

/// Counts this booking for `user_id` and returns the user's booking count.
/// A redelivery of the event that last counted (same event id) does not
/// count again: the host delivers at least once.
fn countBooking(cx: *Context, user_id: []const u8, event_id: []const u8) wasmhook.Error!i64 {
    const counter = try cx.print("bookings:{s}", .{user_id});
    const last_key = try cx.print("last:{s}", .{user_id});
    if (try wasmhook.kv.get(cx.arena, last_key)) |last| {
        if (std.mem.eql(u8, last, event_id)) {
            // A counter is 8 little-endian bytes (what `increment` stores),
            // never decimal text.
            const count = try wasmhook.kv.getCounter(cx.arena, counter);
            if (count > 0) {
                cx.log(.info, "event {s} already counted as booking {d} of user {s}", .{ event_id, count, user_id });
                return count;
            }
        }
    }
    const count = wasmhook.kv.increment(counter, 1);
    wasmhook.kv.set(last_key, event_id);
    return count;
}

// ---------------------------------------------------------------------------
// Tests: `scripts/plugins/zig.sh test` (natively, against wasmhook.testing).

const testing = wasmhook.testing;
const expectEqualStrings = std.testing.expectEqualStrings;

fn booking(id: []const u8, user: ?[]const u8) Event {
    return .{ .id = id, .name = "flight.booked", .user_id = user, .properties = "{\"flight\":\"LH400\"}" };
}

/// The booking counter of `user`, read as the host stores it.
fn bookings(user: []const u8) i64 {
    var buf: [64]u8 = undefined;
    const key = std.fmt.bufPrint(&buf, "bookings:{s}", .{user}) catch unreachable;
    return wasmhook.kv.counterValue(testing.kvValue(key));
}

fn expectSkip(event: Event, reason: []const u8) !void {
    var out = try testing.run(transform, event);
    defer out.deinit();
    try expectEqualStrings(reason, out.decision().skip);
}

test "every fifth booking by default puts a 10% discount" {
    testing.reset();
    defer testing.reset();
    try expectSkip(booking("e1", "u-1"), "booking 1 of 5: no discount until booking 5 (1 in total)");
    try expectSkip(booking("e2", "u-1"), "booking 2 of 5: no discount until booking 5 (2 in total)");
    try expectSkip(booking("e3", "u-1"), "booking 3 of 5: no discount until booking 5 (3 in total)");
    try expectSkip(booking("e4", "u-1"), "booking 4 of 5: no discount until booking 5 (4 in total)");

    var out = try testing.run(transform, booking("e5", "u-1"));
    defer out.deinit();
    const requests = out.decision().fire;
    try std.testing.expectEqual(@as(usize, 1), requests.len);
    const r = requests[0];
    try std.testing.expectEqual(wasmhook.Method.put, r.method);
    try expectEqualStrings("https://api.airline.example.com/v1/customers/u-1/discounts", r.url);
    try std.testing.expectEqual(@as(usize, 2), r.headers.len);
    try expectEqualStrings("content-type", r.headers[0].name);
    try expectEqualStrings("application/json", r.headers[0].value);
    try expectEqualStrings("authorization", r.headers[1].name);
    try expectEqualStrings("Bearer {{secret:LOYALTY_API_KEY}}", r.headers[1].value);
    try expectEqualStrings("{\"percent\":10,\"reason\":\"booking 5\",\"event_id\":\"e5\"}", r.body);
    try std.testing.expectEqual(@as(i64, 5), bookings("u-1"));
    try expectEqualStrings("info user u-1: booking 5 earns 10% off (one discount every 5 bookings)", testing.logs()[0]);

    try expectSkip(booking("e6", "u-1"), "booking 1 of 5: no discount until booking 10 (6 in total)");
}

test "users are counted separately" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("every", "2");
    try expectSkip(booking("a1", "alice"), "booking 1 of 2: no discount until booking 2 (1 in total)");
    try expectSkip(booking("b1", "bob"), "booking 1 of 2: no discount until booking 2 (1 in total)");
    var out = try testing.run(transform, booking("a2", "alice"));
    defer out.deinit();
    try expectEqualStrings("https://api.airline.example.com/v1/customers/alice/discounts", out.decision().fire[0].url);
}

test "config: every, percent and loyalty_url" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("every", "1");
    try testing.setConfig("percent", "25");
    try testing.setConfig("loyalty_url", " http://127.0.0.1:9000/loyalty/ ");
    var out = try testing.run(transform, booking("evt-\"7\"", "user/../42"));
    defer out.deinit();
    const r = out.decision().fire[0];
    try expectEqualStrings("http://127.0.0.1:9000/loyalty/customers/user%2F..%2F42/discounts", r.url);
    try expectEqualStrings("{\"percent\":25,\"reason\":\"booking 1\",\"event_id\":\"evt-\\\"7\\\"\"}", r.body);
}

test "a redelivered event is not counted twice" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("every", "2");
    try expectSkip(booking("e1", "u-1"), "booking 1 of 2: no discount until booking 2 (1 in total)");
    try expectSkip(booking("e1", "u-1"), "booking 1 of 2: no discount until booking 2 (1 in total)");
    for (0..2) |_| {
        var out = try testing.run(transform, booking("e2", "u-1"));
        defer out.deinit();
        try expectEqualStrings("{\"percent\":10,\"reason\":\"booking 2\",\"event_id\":\"e2\"}", out.decision().fire[0].body);
    }
    try std.testing.expectEqual(@as(i64, 2), bookings("u-1"));
    // Stored as the host stores a counter: 8 little-endian bytes.
    try std.testing.expectEqualSlices(u8, &.{ 2, 0, 0, 0, 0, 0, 0, 0 }, testing.kvValue("bookings:u-1").?);
}

test "the same event twice counts once, with every = 5 (the default)" {
    testing.reset();
    defer testing.reset();
    try expectSkip(booking("e1", "u-1"), "booking 1 of 5: no discount until booking 5 (1 in total)");
    try expectSkip(booking("e1", "u-1"), "booking 1 of 5: no discount until booking 5 (1 in total)");
    try expectEqualStrings("info event e1 already counted as booking 1 of user u-1", testing.logs()[0]);
    try expectSkip(booking("e2", "u-1"), "booking 2 of 5: no discount until booking 5 (2 in total)");
    try expectSkip(booking("e2", "u-1"), "booking 2 of 5: no discount until booking 5 (2 in total)");
    try std.testing.expectEqual(@as(i64, 2), bookings("u-1"));
}

test "a counter the host wrote (8 LE bytes) is read back, not parsed as text" {
    testing.reset();
    defer testing.reset();
    // The state the real host leaves after booking 3 by e3.
    var three: [8]u8 = undefined;
    std.mem.writeInt(i64, &three, 3, .little);
    try testing.setKv("bookings:u-1", &three);
    try testing.setKv("last:u-1", "e3");
    try expectSkip(booking("e3", "u-1"), "booking 3 of 5: no discount until booking 5 (3 in total)");
    try std.testing.expectEqual(@as(i64, 3), bookings("u-1"));
    try expectSkip(booking("e4", "u-1"), "booking 4 of 5: no discount until booking 5 (4 in total)");
}

test "a user id of . or .. is skipped, not sent to another URL, and not counted" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("every", "1");
    try expectSkip(booking("e1", ".."), "user_id \"..\" cannot be used in the loyalty URL (\".\" and \"..\" are refused)");
    try expectSkip(booking("e2", "."), "user_id \".\" cannot be used in the loyalty URL (\".\" and \"..\" are refused)");
    try std.testing.expect(testing.kvValue("bookings:..") == null);
    try std.testing.expect(testing.kvValue("bookings:.") == null);
    // Dots inside a longer id are data.
    var out = try testing.run(transform, booking("e3", "..."));
    defer out.deinit();
    try expectEqualStrings("https://api.airline.example.com/v1/customers/.../discounts", out.decision().fire[0].url);
}

test "skips other events and bookings without a user" {
    testing.reset();
    defer testing.reset();
    try expectSkip(.{ .id = "e1", .name = "flight.cancelled", .user_id = "u-1" }, "not a flight.booked event (got flight.cancelled)");
    try expectSkip(booking("e2", null), "flight.booked event has no user_id");
    try expectSkip(booking("e3", ""), "flight.booked event has no user_id");
    try std.testing.expect(testing.kvValue("bookings:") == null);
}

test "bad settings are errors and count nothing" {
    const cases = [_]struct { key: []const u8, value: []const u8, message: []const u8 }{
        .{ .key = "every", .value = "0", .message = "config every must be a positive integer (got 0)" },
        .{ .key = "every", .value = "five", .message = "config every must be an integer (got \"five\")" },
        .{ .key = "percent", .value = "101", .message = "config percent must be between 1 and 100 (got 101)" },
        .{ .key = "loyalty_url", .value = "ftp://x", .message = "config loyalty_url must start with https:// or http://" },
    };
    for (cases) |case| {
        testing.reset();
        defer testing.reset();
        try testing.setConfig(case.key, case.value);
        var out = try testing.run(transform, booking("e1", "u-1"));
        defer out.deinit();
        try expectEqualStrings(case.message, out.errMessage());
        try std.testing.expect(testing.kvValue("bookings:u-1") == null);
    }
}
