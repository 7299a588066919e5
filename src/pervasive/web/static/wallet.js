// "Buy with wallet" (EIP-1193): shown only when the browser has window.ethereum.
// The wallet sends buy() with the item's price, the page waits for the receipt of that
// transaction, the wallet signs the EIP-712 sale receipt the server serves, and the
// signature (never a key) is posted to the server, which verifies it against the chain.
// On a sold item's page the buyer's wallet can sign the receipt again.
"use strict";

(function () {
  const ethereum = window.ethereum;
  if (!ethereum || typeof ethereum.request !== "function") {
    return;
  }
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function reporter(element) {
    return function say(text, isError) {
      element.textContent = text;
      element.classList.toggle("error", Boolean(isError));
    };
  }

  async function account(box) {
    const accounts = await ethereum.request({ method: "eth_requestAccounts" });
    if (!accounts || accounts.length === 0) {
      throw new Error("the wallet shared no account");
    }
    const chainId = parseInt(await ethereum.request({ method: "eth_chainId" }), 16);
    if (chainId !== Number(box.dataset.chainId)) {
      throw new Error("the wallet is on chain " + chainId + ", this shop on chain " +
        box.dataset.chainId + ": switch the wallet's network");
    }
    return accounts[0];
  }

  async function waitForReceipt(hash) {
    for (let tries = 0; tries < 240; tries += 1) {
      const receipt = await ethereum.request({ method: "eth_getTransactionReceipt", params: [hash] });
      if (receipt) {
        return receipt;
      }
      await sleep(500);
    }
    throw new Error("the purchase is not mined after two minutes; look at My purchases later");
  }

  async function signReceipt(order, buyer, say) {
    say("Sign your receipt in the wallet…");
    const typed = await fetch("/orders/" + order + "/typed-data.json?buyer=" + buyer, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!typed.ok) {
      throw new Error((await typed.json()).error);
    }
    const signature = await ethereum.request({
      method: "eth_signTypedData_v4",
      params: [buyer, JSON.stringify(await typed.json())],
    });
    say("Checking the receipt…");
    const answer = await fetch("/orders/" + order + "/wallet-receipt", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ buyer: buyer, signature: signature }),
    });
    const result = await answer.json();
    if (!answer.ok) {
      throw new Error(result.error);
    }
    window.location.assign(result.receipt_url);
  }

  async function buy(box, say) {
    const buyer = await account(box);
    say("Confirm the purchase in your wallet…");
    const hash = await ethereum.request({
      method: "eth_sendTransaction",
      params: [{
        from: buyer,
        to: box.dataset.order,
        value: "0x" + BigInt(box.dataset.priceWei).toString(16),
        data: box.dataset.buyData,
      }],
    });
    say("Purchase sent (" + hash + "); waiting for it to be mined…");
    const receipt = await waitForReceipt(hash);
    if (Number(receipt.status) !== 1) {
      throw new Error("the sale order refused the purchase (transaction " + hash + " reverted)");
    }
    await signReceipt(box.dataset.order, buyer, say);
  }

  async function signAgain(box, say) {
    const buyer = await account(box);
    if (buyer.toLowerCase() !== box.dataset.buyer.toLowerCase()) {
      throw new Error("the wallet's account " + buyer + " did not buy this item");
    }
    await signReceipt(box.dataset.order, buyer, say);
  }

  function wire(boxId, buttonId, statusId, action) {
    const box = document.getElementById(boxId);
    if (!box) {
      return;
    }
    const button = document.getElementById(buttonId);
    const say = reporter(document.getElementById(statusId));
    box.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await action(box, say);
      } catch (error) {
        say((error && error.message) || String(error), true);
        button.disabled = false;
      }
    });
  }

  wire("wallet-buy", "buy-with-wallet", "wallet-status", buy);
  wire("wallet-receipt", "sign-receipt-with-wallet", "wallet-receipt-status", signAgain);
})();
