import { nodeSuite } from "../../src/protocol/node-suite.js";
import { vectorSuite } from "../helpers/suite-vectors.js";

vectorSuite(nodeSuite);
