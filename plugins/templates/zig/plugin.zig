//! {{name}}: a wasmhook plugin written in Zig.
//!
//! It asks the host to POST the whole event as JSON to config `url`; when
//! config `event` is set, events with another name are skipped.
//! Build: scripts/plugins/zig.sh build DIR; test: scripts/plugins/zig.sh test DIR.

const std = @import("std");
const wasmhook = @import("wasmhook");

comptime {
    wasmhook.exportPlugin(transform);
}

/// Panics (failed safety checks) log their message to the host and trap.
pub const panic = wasmhook.panic;

pub fn transform(cx: *wasmhook.Context, event: wasmhook.Event) wasmhook.Error!wasmhook.Decision {
    if (try wasmhook.config.get(cx.arena, "event")) |wanted| {
        if (!std.mem.eql(u8, event.name, wanted)) {
            return cx.skip("event {s} is not {s}", .{ wasmhook.truncate(event.name, 64), wanted });
        }
    }
    const url = try wasmhook.config.get(cx.arena, "url") orelse
        return cx.fail("config url is required", .{});
    if (!std.mem.startsWith(u8, url, "https://") and !std.mem.startsWith(u8, url, "http://")) {
        return cx.fail("config url must start with https:// or http://", .{});
    }
    const headers = try cx.arena.dupe(wasmhook.Header, &.{
        .{ .name = "content-type", .value = "application/json" },
    });
    cx.log(.info, "forwarding {s} {s}", .{ event.name, event.id });
    return cx.fireOne(.{
        .method = .post,
        .url = url,
        .headers = headers,
        .body = try wasmhook.eventJson(cx.arena, event),
    });
}

// Tests: natively, against the SDK's in-memory host (wasmhook.testing).

const testing = wasmhook.testing;

test "posts the configured event to url" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("event", "order.paid");
    try testing.setConfig("url", "https://example.com/hooks/{{name}}");
    var out = try testing.run(transform, .{
        .id = "e1",
        .name = "order.paid",
        .user_id = "u1",
        .timestamp_ms = 1700000000000,
        .properties = "{\"total\":12}",
    });
    defer out.deinit();
    const r = out.decision().fire[0];
    try std.testing.expectEqual(wasmhook.Method.post, r.method);
    try std.testing.expectEqualStrings("https://example.com/hooks/{{name}}", r.url);
    try std.testing.expectEqualStrings(
        "{\"id\":\"e1\",\"name\":\"order.paid\",\"user_id\":\"u1\",\"timestamp_ms\":1700000000000,\"properties\":{\"total\":12}}",
        r.body,
    );
}

test "skips other events" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("event", "order.paid");
    try testing.setConfig("url", "https://example.com/hook");
    var out = try testing.run(transform, .{ .id = "e2", .name = "order.refunded" });
    defer out.deinit();
    try std.testing.expectEqualStrings("event order.refunded is not order.paid", out.decision().skip);
}

test "without config event every event is forwarded" {
    testing.reset();
    defer testing.reset();
    try testing.setConfig("url", "https://example.com/hook");
    var out = try testing.run(transform, .{ .id = "e3", .name = "anything" });
    defer out.deinit();
    try std.testing.expectEqualStrings("https://example.com/hook", out.decision().fire[0].url);
}

test "config url is required" {
    testing.reset();
    defer testing.reset();
    var out = try testing.run(transform, .{ .id = "e4", .name = "order.paid" });
    defer out.deinit();
    try std.testing.expectEqualStrings("config url is required", out.errMessage());
}
