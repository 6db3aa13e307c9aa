/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous D-Bus query "which job runs on our unit?": GetUnitByPID, then the unit's
 * Job property, then the job's JobType, each a sd_bus_call_method_async on a bus attached to the
 * event loop, the whole bounded by one timer. Deciding what to do with k0s is the manager's.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "util.h"
#include "event-util.h"
#include "log.h"
#include "unit-job.h"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PRIVATE_ADDRESS "unix:path=/run/systemd/private"

struct UnitJobQuery {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *slot; /* the call in flight */
        sd_event_source *timer; /* bounds the whole query */
        UnitJobHandler handler;
        void *userdata;
        bool done;
};

bool unit_job_type_is_restart(const char *job_type) {
        return streq_ptr(job_type, "restart");
}

UnitJobQuery *unit_job_query_free(UnitJobQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_event_source_disable_unref(q->timer);
        if (q->bus) {
                (void) sd_bus_detach_event(q->bus);
                sd_bus_flush_close_unref(q->bus);
        }
        sd_event_unref(q->event);
        free(q);
        return NULL;
}

static void query_finish(UnitJobQuery *q, int r, bool restarting) {
        if (q->done)
                return;
        q->done = true;
        q->slot = sd_bus_slot_unref(q->slot);
        event_timer_disarm(q->timer);
        q->handler(q, r, restarting, q->userdata);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        query_finish(userdata, -ETIMEDOUT, false);
        return 0;
}

static int reply_error(sd_bus_message *m) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!e)
                return 0;
        log_debug("systemd answered %s: %s", e->name, e->message ?: "");
        return -sd_bus_error_get_errno(e) ?: -EIO;
}

static int on_job_type(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitJobQuery *q = userdata;
        const char *type = NULL;
        int r = reply_error(m);

        if (r >= 0)
                r = sd_bus_message_read(m, "v", "s", &type);
        if (r >= 0)
                log_debug("systemd job on our unit: %s", type);
        query_finish(q, r < 0 ? r : 0, r >= 0 && unit_job_type_is_restart(type));
        return 0;
}

static int get_property(UnitJobQuery *q, const char *path, const char *iface, const char *prop,
                        sd_bus_message_handler_t cb) {
        q->slot = sd_bus_slot_unref(q->slot);
        return sd_bus_call_method_async(q->bus, &q->slot, SYSTEMD_SERVICE, path,
                                        "org.freedesktop.DBus.Properties", "Get", cb, q, "ss",
                                        iface, prop);
}

static int on_unit_job(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitJobQuery *q = userdata;
        const char *job_path = NULL;
        uint32_t job_id = 0;
        int r = reply_error(m);

        if (r >= 0)
                r = sd_bus_message_read(m, "v", "(uo)", &job_id, &job_path);
        if (r >= 0 && job_id == 0)
                return query_finish(q, 0, false), 0; /* no job: a plain stop (or a kill) */
        if (r >= 0)
                r = get_property(q, job_path, SYSTEMD_SERVICE ".Job", "JobType", on_job_type);
        if (r < 0)
                query_finish(q, r, false);
        return 0;
}

static int on_unit(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitJobQuery *q = userdata;
        const char *unit_path = NULL;
        int r = reply_error(m);

        if (r >= 0)
                r = sd_bus_message_read(m, "o", &unit_path);
        if (r >= 0)
                r = get_property(q, unit_path, SYSTEMD_SERVICE ".Unit", "Job", on_unit_job);
        if (r < 0)
                query_finish(q, r, false);
        return 0;
}

static int bus_connect(const char *address, bool client, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, client);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int unit_job_query(sd_event *e, const char *address, uint32_t pid, uint64_t timeout_usec,
                   UnitJobHandler handler, void *userdata, UnitJobQuery **ret) {
        _cleanup_(unit_job_query_freep) UnitJobQuery *q = calloc(1, sizeof(UnitJobQuery));
        int r;

        if (!q)
                return -ENOMEM;
        q->event = sd_event_ref(e);
        q->handler = handler;
        q->userdata = userdata;

        /* The private socket works without dbus-daemon (minimal systems, early boot). */
        if (address)
                r = bus_connect(address, true, &q->bus);
        else {
                r = bus_connect(SYSTEMD_PRIVATE_ADDRESS, false, &q->bus);
                if (r < 0)
                        r = sd_bus_open_system(&q->bus);
        }
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(q->bus, timeout_usec);
        if (r >= 0)
                r = sd_bus_attach_event(q->bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = event_timer_arm(e, &q->timer, timeout_usec, USEC_PER_MSEC, false, on_timeout, q,
                                    "unit-job-timeout");
        if (r >= 0)
                r = sd_bus_call_method_async(
                        q->bus, &q->slot, SYSTEMD_SERVICE, "/org/freedesktop/systemd1",
                        SYSTEMD_SERVICE ".Manager", "GetUnitByPID", on_unit, q, "u", pid);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(q);
        return 0;
}
