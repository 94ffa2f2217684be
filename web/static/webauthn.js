// Security keys (WebAuthn): register one on the two-factor page, or use one for the second step of
// sign-in. The server sends options as JSON and checks the answer (challenge, origin, RP id).
(function () {
  function b64urlToBuf(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, c => c.charCodeAt(0)).buffer;
  }
  function bufToB64url(buf) {
    let bin = "";
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function post(url, csrf, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify(body || {})}).then(r => r.json().then(data => {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      }));
  }
  function creationOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    const o = Object.assign({}, json);
    o.challenge = b64urlToBuf(json.challenge);
    o.user = Object.assign({}, json.user, {id: b64urlToBuf(json.user.id)});
    o.excludeCredentials = (json.excludeCredentials || []).map(c => Object.assign({}, c, {id: b64urlToBuf(c.id)}));
    return o;
  }
  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    const o = Object.assign({}, json);
    o.challenge = b64urlToBuf(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map(c => Object.assign({}, c, {id: b64urlToBuf(c.id)}));
    return o;
  }
  function credentialJSON(cred) {
    if (cred.toJSON) return cred.toJSON();
    const r = cred.response, out = {id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults(), response: {clientDataJSON: bufToB64url(r.clientDataJSON)}};
    if (r.attestationObject) out.response.attestationObject = bufToB64url(r.attestationObject);
    if (r.authenticatorData) {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64url(r.userHandle);
    }
    return out;
  }
  function say(box, text) { if (box) { box.textContent = text; box.hidden = false; } }

  const add = document.getElementById("add-key");
  if (add) {
    add.addEventListener("click", () => {
      const status = document.getElementById("key-status");
      const name = (document.getElementById("key-name") || {}).value || "Security key";
      post(add.dataset.optionsUrl, add.dataset.csrf)
        .then(json => navigator.credentials.create({publicKey: creationOptions(json)}))
        .then(cred => post(add.dataset.registerUrl, add.dataset.csrf, {name: name, credential: credentialJSON(cred)}))
        .then(data => { window.location.assign(data.redirect); })
        .catch(err => say(status, "The key was not added: " + err.message));
    });
  }

  const use = document.getElementById("use-key");
  if (use) {
    use.addEventListener("click", () => {
      const status = document.getElementById("key-status");
      post(use.dataset.optionsUrl, use.dataset.csrf)
        .then(json => navigator.credentials.get({publicKey: requestOptions(json)}))
        .then(cred => post(use.dataset.verifyUrl, use.dataset.csrf, credentialJSON(cred)))
        .then(data => { window.location.assign(data.redirect); })
        .catch(err => say(status, "The key was not accepted: " + err.message));
    });
  }
})();
