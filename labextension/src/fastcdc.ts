/**
 * Content-defined chunking exactly as the workbench's Python side cuts files (pyfastcdc's
 * FastCDC 2020, normalized chunking level 1, its default gear table; average 64 KiB, min 16 KiB,
 * max 256 KiB; files under 128 KiB stay one chunk), so that a file committed from the browser
 * shares its chunks with the same bytes committed by the CLI or the Python client, and an edit
 * inside a large file changes only the chunks around it.
 *
 * The 64-bit gear hash is kept as two unsigned 32-bit halves (no BigInt in the inner loop).
 */

export const AVG_CHUNK = 64 * 1024;
export const MIN_CHUNK = 16 * 1024;
export const MAX_CHUNK = 256 * 1024;
export const WHOLE_BELOW = 128 * 1024;

// pyfastcdc/py/constants.py (GEAR, GEAR_LS = GEAR << 1, MASKS by log2 of the size)
const GEAR_HEX = [
  '3b5d3c7d207e37dc', '784d68ba91123086', 'cd52880f882e7298', 'eacf8e4e19fdcca7',
  'c31f385dfbd1632b', '1d5f27001e25abe6', '83130bde3c9ad991', 'c4b225676e9b7649',
  'aa329b29e08eb499', 'b67fcbd21e577d58', '0027baaada2acf6b', 'e3ef2d5ac73c2226',
  '0890f24d6ed312b7', 'a809e036851d7c7e', 'f0a6fe5e0013d81b', '1d026304452cec14',
  '03864632648e248f', 'cdaacf3dcd92b9b4', 'f5e012e63c187856', '8862f9d3821c00b6',
  'a82f7338750f6f8a', '1e583dc6c1cb0b6f', '7a3145b69743a7f1', 'abb20fee404807eb',
  'b14b3cfe07b83a5d', 'b9dc27898adb9a0f', '3703f5e91baa62be', 'cf0bb866815f7d98',
  '3d9867c41ea9dcd3', '1be1fa65442bf22c', '14300da4c55631d9', 'e698e9cbc6545c99',
  '4763107ec64e92a5', 'c65821fc65696a24', '76196c064822f0b7', '485be841f3525e01',
  'f652bc9c85974ff5', 'cad8352face9e3e9', '2a6ed1dceb35e98e', 'c6f483badc11680f',
  '3cfd8c17e9cf12f1', '89b83c5e2ea56471', 'ae665cfd24e392a9', 'ec33c4e504cb8915',
  '3fb9b15fc9fe7451', 'd7fd1fd1945f2195', '31ade0853443efd8', '255efc9863e1e2d2',
  '10eab6008d5642cf', '46f04863257ac804', 'a52dc42a789a27d3', 'daaadf9ce77af565',
  '6b479cd53d87febb', '6309e2d3f93db72f', 'c5738ffbaa1ff9d6', '6bd57f3f25af7968',
  '67605486d90d0a4a', 'e14d0b9663bfbdae', 'b7bbd8d816eb0414', 'def8a4f16b35a116',
  'e7932d85aaaffed6', '08161cbae90cfd48', '855507beb294f08b', '91234ea6ffd399b2',
  'ad70cf4b2435f302', 'd289a97565bc2d27', '8e558437ffca99de', '96d2704b7115c040',
  '0889bbcdfc660e41', '5e0d4e67dc92128d', '72a9f8917063ed97', '438b69d409e016e3',
  'df4fed8a5d8a4397', '00f41dcf41d403f7', '4814eb038e52603f', '9dafbacc58e2d651',
  'fe2f458e4be170af', '4457ec414df6a940', '06e62f1451123314', 'bd1014d173ba92cc',
  'def318e25ed57760', '9fea0de9dfca8525', '459de1e76c20624b', 'aeec189617e2d666',
  '126a2c06ab5a83cb', 'b1321532360f6132', '65421503dbb40123', '2d67c287ea089ab3',
  '6c93bff5a56bd6b6', '4ffb2036cab6d98d', 'ce7b785b1be7ad4f', 'edb42ef6189fd163',
  'dc905288703988f6', '365f9c1d2c691884', 'c640583680d99bfe', '3cd4624c07593ec6',
  '7f1ea8d85d7c5805', '014842d480b57149', '0b649bcb5a828688', 'bcd5708ed79b18f0',
  'e987c862fbd2f2f0', '982731671f0cd82c', 'baf13e8b16d8c063', '8ea3109cbd951bba',
  'd141045bfb385cad', '2acbc1a0af1f7d30', 'e6444d89df03bfdf', 'a18cc771b8188ff9',
  '9834429db01c39bb', '214add07fe086a1f', '8f07c19b1f6b3ff9', '56a297b1bf4ffe55',
  '94d558e493c54fc7', '40bfc24c764552cb', '931a706f8a8520cb', '32229d322935bd52',
  '2560d0f5dc4fefaf', '9dbcc48355969bb6', '0fd81c3985c0b56a', 'e03817e1560f2bda',
  'c1bb4f81d892b2d5', 'b0c4864f4e28d2d7', '3ecc49f9d9d6c263', '51307e99b52ba65e',
  '8af2b688da84a752', 'f5d72523b91b20b6', '6d95ff1ff4634806', '562f21555458339a',
  'c0ce47f889336346', '487823e5089b40d8', 'e4727c7ebc6d9592', '5a8f7277e94970ba',
  'fca2f406b1c8bb50', '5b1f8a95f1791070', 'd304af9fc9028605', '5440ab7fc930e748',
  '312d25fbca2ab5a1', '10f4a4b234a4d575', '90301d55047e7473', '3b6372886c61591e',
  '293402b77c444e06', '451f34a4d3e97dd7', '3158d814d81bc57b', '034942425b9bda69',
  'e2032ff9e532d9bb', '62ae066b8b2179e5', '9545e10c2f8d71d8', '7ff7483eb2d23fc0',
  '00945fcebdc98d86', '8764bbbe99b26ca2', '1b1ec62284c0bfc3', '58e0fcc4f0aa362b',
  '5f4abefa878d458d', 'fd74ac2f9607c519', 'a4e3fb37df8cbfa9', 'bf697e43cac574e5',
  '86f14a3f68f4cd53', '24a23d076f1ce522', 'e725cd8048868cc8', 'bf3c729eb2464362',
  'd8f6cd57b3cc1ed8', '6329e52425541577', '62aa688ad5ae1ac0', '0a242566269bf845',
  '168b1a4753aca74b', 'f789afefff2e7e3c', '6c3362093b6fccdb', '4ce8f50bd28c09b2',
  '006a2db95ae8aa93', '975b0d623c3d1a8c', '18605d3935338c5b', '5bb6f6136cad3c71',
  '0f53a20701f8d8a6', 'ab8c5ad2e7e93c67', '40b5ac5127acaa29', '8c7bf63c2075895f',
  '78bd9f7e014a805c', 'b2c9e9f4f9c8c032', 'efd6049827eb91f3', '2be459f482c16fbd',
  'd92ce0c5745aaa8c', '0aaa8fb298d965b9', '2b37f92c6c803b15', '8c54a5e94e0f0e78',
  '95f9b6e90c0a3032', 'e7939faa436c7874', 'd16bfe8f6a8a40c9', '44982b86263fd2fa',
  'e285fb39f984e583', '779a8df72d7619d3', 'f2d79a8de8d5dd1e', 'd1037354d66684e2',
  '004c82a4e668a8e5', '31d40a7668b044e6', 'd70578538bd02c11', 'db45431078c5f482',
  '977121bb7f6a51ad', '73d5ccbd34eff8dd', 'e437a07d356e17cd', '47b2782043c95627',
  '9fb251413e41d49a', 'ccd70b60652513d3', '1c95b31e8a1b49b2', 'cae73dfd1bcb4c1b',
  '34d98331b1f5b70f', '784e39f22338d92f', '18613d4a064df420', 'f1d8dae25f0bcebe',
  '33f77c15ae855efc', '3c88b3b912eb109c', '956a2ec96bafeea5', '1aa005b5e0ad0e87',
  '5500d70527c4bb8e', 'e36c57196421cc44', '13c4d286cc36ee39', '5654a23d818b2a81',
  '77b1dc13d161abdc', '734f44de5f8d5eb5', '60717e174a6c89a2', 'd47d9649266a211e',
  '5b13a4322bb69e90', 'f7669609f8b5fc3c', '21e6ac55bedcdac9', '9b56b62b61166dea',
  'f48f66b939797e9c', '35f332f9c0e6ae9a', 'cc733f6a9a878db0', '3da161e41cc108c2',
  'b7d74ae535914d51', '4d493b0b11d36469', 'ce264d1dfba9741a', 'a9d1f2dc7436dc06',
  '70738016604c2a27', '231d36e96e93f3d5', '7666881197838d19', '4a2a83090aaad40c',
  'f1e761591668b35d', '7363236497f730a7', '301080e37379dd4d', '502dea2971827042',
  'c2c5eb858f32625f', '786afb9edfafbdff', 'daee0d868490b2a4', '617366b3268609f6',
  'ae0e35a0fe46173e', 'd1a07de93e824f11', '079b8b115ea4cca8', '93a99274558faebb',
  'fb1e6e22e08a03b3', 'ea635fdba3698dd0', 'cf53659328503a5c', 'cde3b31e6fd5d780',
  '8e3e4221d3614413', 'ef14d0d86bf1a22c', 'e1d830d3f16c5ddb', 'aabd2b2a451504e1',
];

const GEAR_LS_HEX = [
  '76ba78fa40fc6fb8', 'f09ad1752224610c', '9aa5101f105ce530', 'd59f1c9c33fb994e',
  '863e70bbf7a2c656', '3abe4e003c4b57cc', '062617bc7935b322', '89644acedd36ec92',
  '54653653c11d6932', '6cff97a43caefab0', '004f7555b4559ed6', 'c7de5ab58e78444c',
  '1121e49adda6256e', '5013c06d0a3af8fc', 'e14dfcbc0027b036', '3a04c6088a59d828',
  '070c8c64c91c491e', '9b559e7b9b257368', 'ebc025cc7830f0ac', '10c5f3a70438016c',
  '505ee670ea1edf14', '3cb07b8d839616de', 'f4628b6d2e874fe2', '57641fdc80900fd6',
  '629679fc0f7074ba', '73b84f1315b7341e', '6e07ebd23754c57c', '9e1770cd02befb30',
  '7b30cf883d53b9a6', '37c3f4ca8857e458', '28601b498aac63b2', 'cd31d3978ca8b932',
  '8ec620fd8c9d254a', '8cb043f8cad2d448', 'ec32d80c9045e16e', '90b7d083e6a4bc02',
  'eca579390b2e9fea', '95b06a5f59d3c7d2', '54dda3b9d66bd31c', '8de90775b822d01e',
  '79fb182fd39e25e2', '137078bc5d4ac8e2', '5cccb9fa49c72552', 'd86789ca0997122a',
  '7f7362bf93fce8a2', 'affa3fa328be432a', '635bc10a6887dfb0', '4abdf930c7c3c5a4',
  '21d56c011aac859e', '8de090c64af59008', '4a5b8854f1344fa6', 'b555bf39cef5eaca',
  'd68f39aa7b0ffd76', 'c613c5a7f27b6e5e', '8ae71ff7543ff3ac', 'd7aafe7e4b5ef2d0',
  'cec0a90db21a1494', 'c29a172cc77f7b5c', '6f77b1b02dd60828', 'bdf149e2d66b422c',
  'cf265b0b555ffdac', '102c3975d219fa90', '0aaa0f7d6529e116', '22469d4dffa73364',
  '5ae19e96486be604', 'a51352eacb785a4e', '1cab086fff9533bc', '2da4e096e22b8080',
  '1113779bf8cc1c82', 'bc1a9ccfb924251a', 'e553f122e0c7db2e', '8716d3a813c02dc6',
  'be9fdb14bb14872e', '01e83b9e83a807ee', '9029d6071ca4c07e', '3b5f7598b1c5aca2',
  'fc5e8b1c97c2e15e', '88afd8829bed5280', '0dcc5e28a2246628', '7a2029a2e7752598',
  'bde631c4bdaaeec0', '3fd41bd3bf950a4a', '8b3bc3ced840c496', '5dd8312c2fc5accc',
  '24d4580d56b50796', '62642a646c1ec264', 'ca842a07b7680246', '5acf850fd4113566',
  'd9277feb4ad7ad6c', '9ff6406d956db31a', '9cf6f0b637cf5a9e', 'db685dec313fa2c6',
  'b920a510e07311ec', '6cbf383a58d23108', '8c80b06d01b337fc', '79a8c4980eb27d8c',
  'fe3d51b0baf8b00a', '029085a9016ae292', '16c93796b5050d10', '79aae11daf3631e0',
  'd30f90c5f7a5e5e0', '304e62ce3e19b058', '75e27d162db180c6', '1d4621397b2a3774',
  'a28208b7f670b95a', '559783415e3efa60', 'cc889b13be077fbe', '43198ee370311ff2',
  '3068853b60387376', '4295ba0ffc10d43e', '1e0f83363ed67ff2', 'ad452f637e9ffcaa',
  '29aab1c9278a9f8e', '817f8498ec8aa596', '2634e0df150a4196', '64453a64526b7aa4',
  '4ac1a1ebb89fdf5e', '3b798906ab2d376c', '1fb038730b816ad4', 'c0702fc2ac1e57b4',
  '83769f03b12565aa', '61890c9e9c51a5ae', '7d9893f3b3ad84c6', 'a260fd336a574cbc',
  '15e56d11b5094ea4', 'ebae4a477236416c', 'db2bfe3fe8c6900c', 'ac5e42aaa8b06734',
  '819c8ff11266c68c', '90f047ca113681b0', 'c8e4f8fd78db2b24', 'b51ee4efd292e174',
  'f945e80d639176a0', 'b63f152be2f220e0', 'a6095f3f92050c0a', 'a88156ff9261ce90',
  '625a4bf794556b42', '21e949646949aaea', '20603aaa08fce8e6', '76c6e510d8c2b23c',
  '5268056ef8889c0c', '8a3e6949a7d2fbae', '62b1b029b0378af6', '06928484b737b4d2',
  'c4065ff3ca65b376', 'c55c0cd71642f3ca', '2a8bc2185f1ae3b0', 'ffee907d65a47f80',
  '0128bf9d7b931b0c', '0ec9777d3364d944', '363d8c4509817f86', 'b1c1f989e1546c56',
  'be957df50f1a8b1a', 'fae9585f2c0f8a32', '49c7f66fbf197f52', '7ed2fc87958ae9ca',
  '0de2947ed1e99aa6', '49447a0ede39ca44', 'ce4b9b00910d1990', '7e78e53d648c86c4',
  'b1ed9aaf67983db0', 'c653ca484aa82aee', 'c554d115ab5c3580', '14484acc4d37f08a',
  '2d16348ea7594e96', 'ef135fdffe5cfc78', 'd866c41276df99b6', '99d1ea17a5181364',
  '00d45b72b5d15526', '2eb61ac4787a3518', '30c0ba726a6718b6', 'b76dec26d95a78e2',
  '1ea7440e03f1b14c', '5718b5a5cfd278ce', '816b58a24f595452', '18f7ec7840eb12be',
  'f17b3efc029500b8', '6593d3e9f3918064', 'dfac09304fd723e6', '57c8b3e90582df7a',
  'b259c18ae8b55518', '15551f6531b2cb72', '566ff258d900762a', '18a94bd29c1e1cf0',
  '2bf36dd218146064', 'cf273f5486d8f0e8', 'a2d7fd1ed5148192', '8930570c4c7fa5f4',
  'c50bf673f309cb06', 'ef351bee5aec33a6', 'e5af351bd1abba3c', 'a206e6a9accd09c4',
  '00990549ccd151ca', '63a814ecd16089cc', 'ae0af0a717a05822', 'b68a8620f18be904',
  '2ee24376fed4a35a', 'e7ab997a69dff1ba', 'c86f40fa6adc2f9a', '8f64f0408792ac4e',
  '3f64a2827c83a934', '99ae16c0ca4a27a6', '392b663d14369364', '95ce7bfa37969836',
  '69b3066363eb6e1e', 'f09c73e44671b25e', '30c27a940c9be840', 'e3b1b5c4be179d7c',
  '67eef82b5d0abdf8', '7911677225d62138', '2ad45d92d75fdd4a', '35400b6bc15a1d0e',
  'aa01ae0a4f89771c', 'c6d8ae32c8439888', '2789a50d986ddc72', 'aca9447b03165502',
  'ef63b827a2c357b8', 'e69e89bcbf1abd6a', 'c0e2fc2e94d91344', 'a8fb2c924cd4423c',
  'b6274864576d3d20', 'eecd2c13f16bf878', '43cd58ab7db9b592', '36ad6c56c22cdbd4',
  'e91ecd7272f2fd38', '6be665f381cd5d34', '98e67ed5350f1b60', '7b42c3c839821184',
  '6fae95ca6b229aa2', '9a92761623a6c8d2', '9c4c9a3bf752e834', '53a3e5b8e86db80c',
  'e0e7002cc098544e', '463a6dd2dd27e7aa', 'eccd10232f071a32', '945506121555a818',
  'e3cec2b22cd166ba', 'e6c646c92fee614e', '602101c6e6f3ba9a', 'a05bd452e304e084',
  '858bd70b1e64c4be', 'f0d5f73dbf5f7bfe', 'b5dc1b0d09216548', 'c2e6cd664d0c13ec',
  '5c1c6b41fc8c2e7c', 'a340fbd27d049e22', '0f371622bd499950', '275324e8ab1f5d76',
  'f63cdc45c1140766', 'd4c6bfb746d31ba0', '9ea6cb2650a074b8', '9bc7663cdfabaf00',
  '1c7c8443a6c28826', 'de29a1b0d7e34458', 'c3b061a7e2d8bbb6', '557a56548a2a09c2',
];

const MASKS_HEX = [
  '0000000000000000', '0000000000000000', '0000000000000000', '0000000000000000',
  '0000000000000000', '0000000001804110', '0000000001803110', '0000000018035100',
  '0000001800035300', '0000019000353000', '0000590003530000', '0000d90003530000',
  '0000d90103530000', '0000d90303530000', '0000d90313530000', '0000d90f03530000',
  '0000d90303537000', '0000d90703537000', '0000d90707537000', '0000d91707537000',
  '0000d91747537000', '0000d91767537000', '0000d93767537000', '0000d93777537000',
  '0000d93777577000', '0000db3777577000',
];

function halves(hex: string[]): [Uint32Array, Uint32Array] {
  const hi = new Uint32Array(hex.length);
  const lo = new Uint32Array(hex.length);
  hex.forEach((h, i) => {
    hi[i] = parseInt(h.slice(0, 8), 16);
    lo[i] = parseInt(h.slice(8), 16);
  });
  return [hi, lo];
}

const [GEAR_HI, GEAR_LO] = halves(GEAR_HEX);
const [GEAR_LS_HI, GEAR_LS_LO] = halves(GEAR_LS_HEX);

export interface ICdcConfig {
  avg: number;
  min: number;
  max: number;
  /** The masks as [hi, lo]: small (before the average), large (after), and both shifted left. */
  maskS: [number, number];
  maskL: [number, number];
  maskSLs: [number, number];
  maskLLs: [number, number];
}

function maskAt(index: number): [number, number] {
  const h = MASKS_HEX[index];
  return [parseInt(h.slice(0, 8), 16), parseInt(h.slice(8), 16)];
}

function shiftLeft1([hi, lo]: [number, number]): [number, number] {
  return [((hi << 1) | (lo >>> 31)) >>> 0, (lo << 1) >>> 0];
}

/** pyfastcdc's ``FastCDC(avg, min_size=min, max_size=max)`` with normalized chunking 1. */
export function cdcConfig(avg = AVG_CHUNK, min = MIN_CHUNK, max = MAX_CHUNK): ICdcConfig {
  const bits = Math.round(Math.log2(avg));
  const maskS = maskAt(bits + 1);
  const maskL = maskAt(bits - 1);
  return { avg, min, max, maskS, maskL, maskSLs: shiftLeft1(maskS), maskLLs: shiftLeft1(maskL) };
}

const DEFAULT = cdcConfig();

/** The length of the chunk starting at ``start`` in ``buf[start:end]`` (pyfastcdc's cut_gear). */
export function cutPoint(buf: Uint8Array, start: number, end: number, cfg = DEFAULT): number {
  let remaining = end - start;
  if (remaining <= cfg.min) {
    return remaining;
  }
  let center = cfg.avg;
  if (remaining > cfg.max) {
    remaining = cfg.max;
  } else if (remaining < center) {
    center = remaining;
  }
  const [sLsHi, sLsLo] = cfg.maskSLs;
  const [sHi, sLo] = cfg.maskS;
  const [lLsHi, lLsLo] = cfg.maskLLs;
  const [lHi, lLo] = cfg.maskL;
  let hi = 0;
  let lo = 0;
  const startPos = Math.floor(cfg.min / 2) * 2;
  const midPos = Math.floor(center / 2) * 2;
  const endPos = Math.floor(remaining / 2) * 2;
  for (let pos = startPos; pos < endPos; pos += 2) {
    const small = pos < midPos;
    // h = (h << 2) + GEAR_LS[b]  (mod 2^64)
    let b = buf[start + pos];
    let sum = ((lo << 2) >>> 0) + GEAR_LS_LO[b];
    hi = (((hi << 2) | (lo >>> 30)) + GEAR_LS_HI[b] + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    lo = sum >>> 0;
    if (small ? (hi & sLsHi) === 0 && (lo & sLsLo) === 0 : (hi & lLsHi) === 0 && (lo & lLsLo) === 0) {
      return pos;
    }
    // h = h + GEAR[b']  (mod 2^64)
    b = buf[start + pos + 1];
    sum = lo + GEAR_LO[b];
    hi = (hi + GEAR_HI[b] + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    lo = sum >>> 0;
    if (small ? (hi & sHi) === 0 && (lo & sLo) === 0 : (hi & lHi) === 0 && (lo & lLo) === 0) {
      return pos + 1;
    }
  }
  return remaining;
}

/** Chunk lengths of a whole buffer, as the Python side cuts a file of these bytes. */
export function chunkLengthsOf(data: Uint8Array, cfg = DEFAULT): number[] {
  if (data.length === 0) {
    return [];
  }
  if (data.length < WHOLE_BELOW) {
    return [data.length];
  }
  const out: number[] = [];
  for (let offset = 0; offset < data.length; ) {
    const length = cutPoint(data, offset, data.length, cfg);
    out.push(length);
    offset += length;
  }
  return out;
}

/**
 * Streaming: feed the file's pieces as they arrive, get its chunks. A cut is decided only with
 * ``max`` bytes after the chunk's start in hand (or at the end of the file), so the chunks are
 * the same as cutting the whole file at once; at most ``2 * max`` bytes are held.
 */
export class CdcStream {
  constructor(cfg = DEFAULT) {
    this._cfg = cfg;
    this._buf = new Uint8Array(2 * cfg.max);
  }

  /** Add the next piece; returns the chunks now complete (copies, safe to keep). */
  push(piece: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < piece.length) {
      const take = Math.min(this._buf.length - this._filled, piece.length - i);
      this._buf.set(piece.subarray(i, i + take), this._filled);
      this._filled += take;
      i += take;
      this._total += take;
      // enough to cut: whole-file rule settled (max > WHOLE_BELOW) and max bytes in hand
      while (this._filled - this._start >= this._cfg.max) {
        const length = cutPoint(this._buf, this._start, this._filled, this._cfg);
        out.push(this._buf.slice(this._start, this._start + length));
        this._start += length;
      }
      if (this._start > 0) {
        this._buf.copyWithin(0, this._start, this._filled);
        this._filled -= this._start;
        this._start = 0;
      }
    }
    return out;
  }

  /** The file ended: its last chunks. */
  finish(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this._total < WHOLE_BELOW) {
      if (this._filled > 0) {
        out.push(this._buf.slice(0, this._filled));
      }
    } else {
      while (this._start < this._filled) {
        const length = cutPoint(this._buf, this._start, this._filled, this._cfg);
        out.push(this._buf.slice(this._start, this._start + length));
        this._start += length;
      }
    }
    this._start = this._filled = this._total = 0;
    return out;
  }

  private _cfg: ICdcConfig;
  private _buf: Uint8Array;
  private _start = 0;
  private _filled = 0;
  private _total = 0;
}
