// Console passkeys (WebAuthn): registering one on /console/passkeys and signing in with
// one on /console/sign-in. The server is the relying party; this script only carries the
// options to the browser's authenticator and its answer back. Forms stay hidden or inert
// where the browser has no WebAuthn JSON support.
"use strict";
(function () {
  var supported = window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

  function post(url, fields) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw new Error(body.error || response.statusText); }
        return body;
      });
    });
  }

  function say(text) {
    var status = document.getElementById("passkey-status");
    if (status) { status.textContent = text; }
  }

  function failure(prefix, error) {
    // The user closing the browser's prompt is not an error worth a stack of words.
    if (error && error.name === "NotAllowedError") { return prefix + ": cancelled or timed out."; }
    return prefix + ": " + (error && error.message ? error.message : String(error));
  }

  var register = document.getElementById("passkey-register");
  if (register) {
    if (!supported) {
      say("This browser cannot register passkeys (no WebAuthn).");
    }
    register.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!supported) { return; }
      var fields = { csrf: register.elements.csrf.value, label: register.elements.label.value };
      say("Waiting for your authenticator…");
      post("/console/passkeys/options", fields)
        .then(function (options) {
          return navigator.credentials.create({
            publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
          });
        })
        .then(function (credential) {
          fields.credential = JSON.stringify(credential.toJSON());
          return post("/console/passkeys", fields);
        })
        .then(function () { window.location.assign("/console/passkeys?registered=1"); })
        .catch(function (error) { say(failure("Not registered", error)); });
    });
  }

  var signIn = document.getElementById("passkey-sign-in");
  if (signIn && supported) {
    signIn.hidden = false;
    signIn.addEventListener("submit", function (event) {
      event.preventDefault();
      say("Waiting for your authenticator…");
      post("/console/sign-in/passkey/options", {})
        .then(function (options) {
          return navigator.credentials.get({
            publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
          });
        })
        .then(function (credential) {
          return post("/console/sign-in/passkey", { credential: JSON.stringify(credential.toJSON()) });
        })
        .then(function (answer) { window.location.assign(answer.location || "/console/"); })
        .catch(function (error) { say(failure("Not signed in", error)); });
    });
  }
})();
