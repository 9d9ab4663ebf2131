"""A desktop notification daemon for the wallet app's test: it owns
org.freedesktop.Notifications on the session bus (DBUS_SESSION_BUS_ADDRESS) and answers
the Desktop Notifications Specification's methods as a real daemon does, writing each
Notify call as one JSON line to the file named by its argument.

Usage: python notification_daemon.py LOG_FILE
The log file is created (empty) once the name is owned: the test waits for it.
"""

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
INTROSPECTION = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="Notify">
      <arg name="app_name" type="s" direction="in"/>
      <arg name="replaces_id" type="u" direction="in"/>
      <arg name="app_icon" type="s" direction="in"/>
      <arg name="summary" type="s" direction="in"/>
      <arg name="body" type="s" direction="in"/>
      <arg name="actions" type="as" direction="in"/>
      <arg name="hints" type="a{sv}" direction="in"/>
      <arg name="expire_timeout" type="i" direction="in"/>
      <arg name="id" type="u" direction="out"/>
    </method>
    <method name="GetCapabilities"><arg name="capabilities" type="as" direction="out"/></method>
    <method name="CloseNotification"><arg name="id" type="u" direction="in"/></method>
    <method name="GetServerInformation">
      <arg name="name" type="s" direction="out"/>
      <arg name="vendor" type="s" direction="out"/>
      <arg name="version" type="s" direction="out"/>
      <arg name="spec_version" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
  </interface>
</node>
"""
# RequestName flag: fail rather than queue behind another daemon.
DO_NOT_QUEUE = 4
PRIMARY_OWNER = 1


def main(log_path: str) -> None:
    conn = open_dbus_connection(bus="SESSION")
    (result,) = conn.send_and_get_reply(message_bus.RequestName(NAME, DO_NOT_QUEUE)).body
    if result != PRIMARY_OWNER:
        sys.exit(f"{NAME} is owned by another process ({result})")
    log = open(log_path, "a", encoding="utf-8")
    next_id = 1
    while True:
        try:
            msg = conn.receive()
        except (ConnectionError, OSError):
            return  # the bus went away with the test
        if msg.header.message_type != MessageType.method_call:
            continue
        fields = msg.header.fields
        member = fields.get(HeaderFields.member)
        if fields.get(HeaderFields.path) != PATH:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", "s", (str(fields.get(HeaderFields.path)),)))
        elif member == "Notify" and fields.get(HeaderFields.signature) == "susssasa{sv}i":
            app, replaces, icon, summary, body, actions, hints, timeout = msg.body
            shown = replaces or next_id
            if not replaces:
                next_id += 1
            log.write(json.dumps({
                "id": shown, "app_name": app, "replaces_id": replaces, "app_icon": icon,
                "summary": summary, "body": body, "actions": actions,
                # Each hint is (signature, value).
                "hints": {k: v[1] for k, v in hints.items()}, "expire_timeout": timeout,
            }) + "\n")
            log.flush()
            conn.send(new_method_return(msg, "u", (shown,)))
        elif member == "Introspect":
            conn.send(new_method_return(msg, "s", (INTROSPECTION,)))
        elif member == "GetCapabilities":
            conn.send(new_method_return(msg, "as", (["body"],)))
        elif member == "GetServerInformation":
            conn.send(new_method_return(msg, "ssss", ("countersign-test-daemon", "countersign", "1", "1.2")))
        elif member == "CloseNotification":
            conn.send(new_method_return(msg))
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"{member} with signature {fields.get(HeaderFields.signature)}",)))


if __name__ == "__main__":
    main(sys.argv[1])
